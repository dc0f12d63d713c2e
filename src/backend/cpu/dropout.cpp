// CPU dropout: one Philox block per 4 elements, as the CPU random kernel draws them, so the
// kept elements are those rand() < 1 - p would keep.
#include "anvil/core/generator.h"
#include "backend/cpu/loops.h"
#include "backend/dropout_kernels.h"

namespace anvil::cpu {
namespace {
using backend::DropoutArgs;

template <class T>
void dropout_forward(const DropoutArgs& r, const Tensor& out, const Tensor& mask, const Tensor& x) {
  using C = compute_t<T>;
  const T* xs = x.data<T>();
  T* ys = out.data<T>();
  bool* keep = mask.data<bool>();
  const C scale = C(r.scale);
  const int64_t n = x.numel(), blocks = (n + 3) / 4;
  parallel_for(blocks, 16, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const auto bits = philox4x32(r.first_block + uint64_t(blk), 0, r.seed);
      for (int64_t k = 0; k < 4; ++k) {
        const int64_t i = blk * 4 + k;
        if (i >= n) break;
        keep[i] = uint32_to_uniform(bits[size_t(k)]) < r.keep_below;
        // x * 0 for a dropped element, as the composed mul does (-0 and NaN included).
        ys[i] = T(C(xs[i]) * (keep[i] ? scale : C(0)));
      }
    }
  });
}

void dropout_cpu(const DropoutArgs& r, const Tensor& out, const Tensor& mask, const Tensor& x) {
  ANVIL_CHECK(!r.device_state, DeviceError,
              "dropout: CPU draws cannot be captured in a CUDA graph");
  ANVIL_DISPATCH_FLOAT(x.dtype(), "dropout", [&] { dropout_forward<scalar_t>(r, out, mask, x); });
}

void dropout_backward_cpu(double scale, const Tensor& grad_in, const Tensor& grad_out,
                          const Tensor& mask) {
  ANVIL_DISPATCH_FLOAT(grad_out.dtype(), "dropout_backward", [&] {
    using T = scalar_t;
    using C = compute_t<T>;
    const C s = C(scale);
    binary_map<T, T, bool>(grad_in, grad_out, mask,
                           [s](T g, bool keep) { return T(C(g) * (keep ? s : C(0))); });
  });
}

ANVIL_REGISTER_KERNEL(backend::dropout_kernels, CPU, &dropout_cpu);
ANVIL_REGISTER_KERNEL(backend::dropout_backward_kernels, CPU, &dropout_backward_cpu);

}  // namespace
}  // namespace anvil::cpu
