// CPU-only fallbacks for the CUDA memory statistics; the CUDA backend sets the hooks.
#include "anvil/core/memory_stats.h"

namespace anvil {
namespace detail {
MemoryStats (*cuda_memory_stats_hook)(int) = nullptr;
void (*cuda_reset_peak_memory_stats_hook)(int) = nullptr;
void (*cuda_empty_cache_hook)() = nullptr;
}  // namespace detail

MemoryStats cuda_memory_stats(int device) {
  return detail::cuda_memory_stats_hook ? detail::cuda_memory_stats_hook(device) : MemoryStats{};
}

void cuda_reset_peak_memory_stats(int device) {
  if (detail::cuda_reset_peak_memory_stats_hook) detail::cuda_reset_peak_memory_stats_hook(device);
}

void cuda_empty_cache() {
  if (detail::cuda_empty_cache_hook) detail::cuda_empty_cache_hook();
}

}  // namespace anvil
