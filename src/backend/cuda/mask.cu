// CUDA triangles (tril, triu): one thread per element of contiguous [batch, rows, cols].
#include "backend/cuda/launch.cuh"
#include "backend/mask_kernels.h"

namespace anvil::cuda {
namespace {
using backend::TriangleArgs;

template <class T>
__global__ void triangle_kernel(TriangleArgs a, T* out, const T* x, int64_t n) {
  const T zero = from_double<T>(0.0);
  ANVIL_GRID_STRIDE(e, n) {
    const int64_t j = e % a.cols, i = (e / a.cols) % a.rows;
    const int64_t d = j - i;
    const bool keep = a.lower ? d <= a.diagonal : d >= a.diagonal;
    out[e] = keep ? x[e] : zero;
  }
}

void triangle_cuda(const TriangleArgs& a, const Tensor& out, const Tensor& x) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(x.device().index);
  ANVIL_DISPATCH_ALL(x.dtype(), "triangle", [&] {
    using T = dev_t<scalar_t>;
    triangle_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(
        a, static_cast<T*>(out.data_ptr()), static_cast<const T*>(x.data_ptr()), n);
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

ANVIL_REGISTER_KERNEL(backend::triangle_kernels, CUDA, &triangle_cuda);

}  // namespace
}  // namespace anvil::cuda
