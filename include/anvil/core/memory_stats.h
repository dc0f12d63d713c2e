// CUDA memory statistics and cache control for the caching device allocator.
//
// These functions exist in every build of anvil. Without the CUDA backend, or for a device
// index that does not exist, the statistics are all zero and the controls do nothing.
//
// CUDA tensors get their memory from a caching allocator (as PyTorch's CUDACachingAllocator):
// freed blocks stay reserved by anvil and serve later requests, so after warm-up a training
// step makes no cudaMalloc calls. Requests are rounded up to a multiple of 512 bytes; those
// of at most 1 MiB are carved from 2 MiB segments, larger ones from 20 MiB segments (requests
// under 10 MiB) or from segments of the request rounded up to 2 MiB. Free neighbours within a
// segment are merged. When cudaMalloc runs out of memory the cache is emptied and the call
// retried once before a DeviceError is thrown.
//
// Stream assumption: every CUDA operation in anvil runs on the legacy default stream, so a
// block freed on the host may be handed to the next request at once: all work that used it
// was queued earlier on the same stream and finishes before any work that reuses it. Work on
// other streams would break this; using a block from a second stream will need the allocator
// to record that stream on the block (record_stream) and wait for an event on it before reuse.
#pragma once
#include <cstdint>

namespace anvil {

struct MemoryStats {
  int64_t allocated_bytes = 0;       // bytes in live blocks (rounded sizes)
  int64_t reserved_bytes = 0;        // bytes held from the driver (allocated + cached)
  int64_t peak_allocated_bytes = 0;  // highest allocated_bytes since start or the last reset
  int64_t num_allocs = 0;            // user allocations served (non-empty), ever
  int64_t num_device_mallocs = 0;    // cudaMalloc calls the allocator made, ever
  int64_t num_device_frees = 0;      // cudaFree calls the allocator made, ever
};

// The caching allocator's statistics for cuda:`device`.
MemoryStats cuda_memory_stats(int device = 0);
// Sets peak_allocated_bytes of cuda:`device` to its current allocated_bytes.
void cuda_reset_peak_memory_stats(int device = 0);
// Returns every cached segment with no live block to the driver, on every device.
void cuda_empty_cache();

namespace detail {
// Set by the CUDA backend when it is linked in.
extern MemoryStats (*cuda_memory_stats_hook)(int device);
extern void (*cuda_reset_peak_memory_stats_hook)(int device);
extern void (*cuda_empty_cache_hook)();
}  // namespace detail

}  // namespace anvil
