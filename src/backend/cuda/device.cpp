// CUDA device discovery and memory. A plain cudaMalloc allocator for now; the caching,
// stream-ordered allocator replaces it with the rest of the CUDA backend.
#include "anvil/core/allocator.h"
#include "anvil/core/device.h"
#include "backend/cuda/runtime.h"

namespace anvil {
namespace detail {
extern int (*cuda_device_count_hook)();
}

namespace cuda {
namespace {

int device_count() {
  static const int count = [] {
    int n = 0;
    // No driver or no GPU: zero devices, not an error.
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

class CudaAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes, int device_index) override {
    ANVIL_CHECK(device_index >= 0 && device_index < device_count(), DeviceError,
                "allocate: cuda:", device_index, " is not available (this machine has ",
                device_count(), " CUDA devices)");
    if (nbytes == 0) return nullptr;
    DeviceGuard g(device_index);
    void* p = nullptr;
    ANVIL_CUDA_CHECK(cudaMalloc(&p, nbytes));
    return p;
  }
  void deallocate(void* p, size_t, int device_index) override {
    if (!p) return;
    DeviceGuard g(device_index);
    cudaFree(p);
  }
};

CudaAllocator g_allocator;
const bool g_registered = [] {
  register_allocator(DeviceKind::CUDA, &g_allocator);
  detail::cuda_device_count_hook = &device_count;
  return true;
}();

}  // namespace
}  // namespace cuda
}  // namespace anvil
