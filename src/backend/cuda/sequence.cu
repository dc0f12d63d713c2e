// CUDA evenly spaced fills (see backend/sequence_kernels.h). The double arithmetic is
// explicitly rounded (__dmul_rn, __dadd_rn) so that it is not contracted into FMAs and gives
// the CPU kernel's values bit for bit.
#include "backend/cuda/launch.cuh"
#include "backend/cuda/stream.h"
#include "backend/sequence_kernels.h"

namespace anvil::cuda {
namespace {

template <class T>
__global__ void sequence_kernel(backend::SequenceArgs a, T* y, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const double v = a.from_end && i >= n / 2 ? __dadd_rn(a.end, -__dmul_rn(a.step, double(n - 1 - i)))
                                              : __dadd_rn(a.start, __dmul_rn(a.step, double(i)));
    y[i] = from_double<T>(v);
  }
}

void sequence_cuda(const backend::SequenceArgs& a, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  ANVIL_DISPATCH_NUMERIC(out.dtype(), "sequence", [&] {
    using T = dev_t<scalar_t>;
    sequence_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(
        a, static_cast<T*>(out.data_ptr()), n);
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

ANVIL_REGISTER_KERNEL(backend::sequence_kernels, CUDA, &sequence_cuda);

}  // namespace
}  // namespace anvil::cuda
