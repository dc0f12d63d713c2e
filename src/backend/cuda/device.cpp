// CUDA device discovery, and registration of the caching allocator (caching_allocator.cpp)
// and of the hooks behind anvil/core/device.h and anvil/core/memory_stats.h.
#include "anvil/core/allocator.h"
#include "anvil/core/device.h"
#include "anvil/core/memory_stats.h"
#include "backend/cuda/caching_allocator.h"
#include "backend/cuda/runtime.h"

namespace anvil {
namespace detail {
extern int (*cuda_device_count_hook)();
}

namespace cuda {

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

namespace {

const bool g_registered = [] {
  register_allocator(DeviceKind::CUDA, &caching_allocator());
  detail::cuda_device_count_hook = &device_count;
  detail::cuda_memory_stats_hook = &caching_allocator_stats;
  detail::cuda_reset_peak_memory_stats_hook = &caching_allocator_reset_peak;
  detail::cuda_empty_cache_hook = &caching_allocator_empty_cache;
  return true;
}();

}  // namespace
}  // namespace cuda
}  // namespace anvil
