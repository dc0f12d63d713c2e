// CUDA dropout, bit for bit the CPU kernel: one thread per Philox block (4 elements), drawing
// the float32 uniforms rand() draws, so a seed drops the same elements on both backends. The
// products round once in the compute type and once to the storage type, as mul's do.
#include "backend/cuda/launch.cuh"
#include "backend/cuda/philox.cuh"
#include "backend/cuda/stream.h"
#include "backend/dropout_kernels.h"

namespace anvil::cuda {
namespace {
using backend::DropoutArgs;

template <class T>
__global__ void dropout_kernel(DropoutArgs r, T* out, bool* mask, const T* x, int64_t n) {
  using C = compute_t<T>;
  const C scale = C(r.scale);
  // During graph replay the seed and the base of the counters come from the device.
  const uint64_t seed = r.device_state ? r.device_state[0] : r.seed;
  const uint64_t first = r.device_state ? r.device_state[1] + r.first_block : r.first_block;
  const int64_t blocks = (n + 3) / 4;
  ANVIL_GRID_STRIDE(blk, blocks) {
    const PhiloxBlock bits = philox4x32(first + uint64_t(blk), 0, seed);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int64_t i = blk * 4 + k;
      if (i >= n) break;
      const bool keep = uint32_to_uniform_float(bits.x[k]) < r.keep_below;
      mask[i] = keep;
      // x * 0 for a dropped element, as the composed mul does (-0 and NaN included).
      out[i] = down<T>(up(x[i]) * (keep ? scale : C(0)));
    }
  }
}

template <class T>
struct MaskedScale {
  compute_t<T> scale;
  __device__ T operator()(T g, bool keep) const {
    return down<T>(up(g) * (keep ? scale : compute_t<T>(0)));
  }
};

void dropout_cuda(const DropoutArgs& r, const Tensor& out, const Tensor& mask, const Tensor& x) {
  const int64_t n = x.numel();
  if (n == 0) return;
  DeviceGuard guard(x.device().index);
  const int64_t blocks = (n + 3) / 4;
  ANVIL_DISPATCH_FLOAT(x.dtype(), "dropout", [&] {
    using T = dev_t<scalar_t>;
    dropout_kernel<T><<<blocks_for(blocks), kThreads, 0, current_stream()>>>(
        r, static_cast<T*>(out.data_ptr()), mask.data<bool>(), static_cast<const T*>(x.data_ptr()),
        n);
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

void dropout_backward_cuda(double scale, const Tensor& grad_in, const Tensor& grad_out,
                           const Tensor& mask) {
  DeviceGuard guard(grad_in.device().index);
  ANVIL_DISPATCH_FLOAT(grad_out.dtype(), "dropout_backward", [&] {
    using T = dev_t<scalar_t>;
    map2<T, T, bool>(grad_in, grad_out, mask, MaskedScale<T>{compute_t<T>(scale)});
  });
}

ANVIL_REGISTER_KERNEL(backend::dropout_kernels, CUDA, &dropout_cuda);
ANVIL_REGISTER_KERNEL(backend::dropout_backward_kernels, CUDA, &dropout_backward_cuda);

}  // namespace
}  // namespace anvil::cuda
