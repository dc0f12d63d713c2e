// CUDA device discovery, and registration of the caching allocator (caching_allocator.cpp)
// and of the hooks behind anvil/core/device.h (device count, cuda_synchronize) and
// anvil/core/memory_stats.h.
#include "anvil/core/allocator.h"
#include "anvil/core/device.h"
#include "anvil/core/memory_stats.h"
#include "backend/cuda/caching_allocator.h"
#include "backend/cuda/runtime.h"
#include "backend/cuda/stream.h"

namespace anvil {
namespace detail {
extern int (*cuda_device_count_hook)();
extern void (*cuda_synchronize_hook)();
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

// anvil::cuda_synchronize: the calling thread's current device.
void synchronize_current_device() {
  if (device_count() == 0) return;
  int device = 0;
  ANVIL_CUDA_CHECK(cudaGetDevice(&device));
  synchronize(device);
}

const bool g_registered = [] {
  register_allocator(DeviceKind::CUDA, &caching_allocator());
  detail::cuda_device_count_hook = &device_count;
  detail::cuda_synchronize_hook = &synchronize_current_device;
  detail::cuda_memory_stats_hook = &caching_allocator_stats;
  detail::cuda_reset_peak_memory_stats_hook = &caching_allocator_reset_peak;
  detail::cuda_empty_cache_hook = &caching_allocator_empty_cache;
  return true;
}();

}  // namespace
}  // namespace cuda
}  // namespace anvil
