// CUDA rotary position embedding: one thread per pair (i, i + D/2) of a row; the row's cos and
// sin are found through their broadcast strides (a pack over the leading dims, merged where
// every operand allows: [T, D] tables against [B, H, T, D] make two dims).
#include "backend/cuda/launch.cuh"
#include "backend/rotary_kernels.h"

namespace anvil::cuda {
namespace {

template <class T>
__global__ void rotary_kernel(Pack<3> rows, bool transpose, T* out, const T* x, const T* cos,
                              const T* sin, int64_t half, int64_t n) {
  using C = compute_t<T>;
  ANVIL_GRID_STRIDE(e, n) {
    const int64_t r = e / half, i = e % half;
    int64_t off[3];
    offsets_of(rows, r, off);
    const int64_t xi = off[0] + i, ci = off[1] + i, si = off[2] + i;
    const C a = up(x[xi]), b = up(x[xi + half]);
    const C c1 = up(cos[ci]), c2 = up(cos[ci + half]);
    const C s1 = up(sin[si]), s2 = up(sin[si + half]);
    if (!transpose) {
      out[xi] = down<T>(a * c1 - b * s1);
      out[xi + half] = down<T>(b * c2 + a * s2);
    } else {
      out[xi] = down<T>(a * c1 + b * s2);
      out[xi + half] = down<T>(b * c2 - a * s1);
    }
  }
}

void rotary_cuda(bool transpose, const Tensor& out, const Tensor& x, const Tensor& cos,
                 const Tensor& sin) {
  const int64_t half = x.size(-1) / 2, n = x.numel() / 2;
  if (n == 0) return;
  DeviceGuard guard(x.device().index);
  // The first element of each row: x's rows are contiguous, cos and sin's follow their strides.
  const Tensor xr = x.select(-1, 0), cr = cos.select(-1, 0), sr = sin.select(-1, 0);
  const Pack<3> rows = make_pack<3>({&xr, &cr, &sr});
  ANVIL_DISPATCH_FLOAT(x.dtype(), "rotary", [&] {
    using T = dev_t<scalar_t>;
    rotary_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(
        rows, transpose, static_cast<T*>(out.data_ptr()), static_cast<const T*>(x.data_ptr()),
        static_cast<const T*>(cos.data_ptr()), static_cast<const T*>(sin.data_ptr()), half, n);
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

ANVIL_REGISTER_KERNEL(backend::rotary_kernels, CUDA, &rotary_cuda);

}  // namespace
}  // namespace anvil::cuda
