// CUDA element-wise ops of three operands (where, clamp), as the CPU kernels.
#include "backend/cuda/launch.cuh"
#include "backend/ternary_kernels.h"

namespace anvil::cuda {
namespace {
using backend::TernaryOp;

template <class T>
struct Where {
  __device__ T operator()(bool k, T x, T y) const { return k ? x : y; }
};

// Comparisons with NaN are false, so a NaN input passes through.
template <class T>
struct Clamp {
  __device__ T operator()(T xs, T los, T his) const {
    const auto x = up(xs), lo = up(los), hi = up(his);
    const auto r = x < lo ? lo : x;
    return down<T>(r > hi ? hi : r);
  }
};

void ternary_cuda(TernaryOp op, const Tensor& out, const Tensor& a, const Tensor& b,
                  const Tensor& c) {
  DeviceGuard guard(out.device().index);
  ANVIL_DISPATCH_ALL(out.dtype(), "ternary", [&] {
    using T = dev_t<scalar_t>;
    switch (op) {
      case TernaryOp::Where: map3<T, bool, T, T>(out, a, b, c, Where<T>{}); break;
      case TernaryOp::Clamp: map3<T, T, T, T>(out, a, b, c, Clamp<T>{}); break;
    }
  });
}

ANVIL_REGISTER_KERNEL(backend::ternary_kernels, CUDA, &ternary_cuda);

}  // namespace
}  // namespace anvil::cuda
