// The caching CUDA allocator behind every CUDA tensor (see anvil/core/memory_stats.h for the
// size classes and the stream assumption it relies on).
#pragma once
#include <cstddef>
#include <cstdint>

#include "anvil/core/allocator.h"
#include "anvil/core/memory_stats.h"

namespace anvil::cuda {

// Number of CUDA devices (0 without a driver or GPU); defined in device.cpp.
int device_count();

// The process-wide caching allocator. Never destroyed, so storages released during static
// destruction still find it; cached segments go back to the driver with the process.
Allocator& caching_allocator();

MemoryStats caching_allocator_stats(int device);
void caching_allocator_reset_peak(int device);
void caching_allocator_empty_cache();

// CUDA graph pools (see caching_allocator.cpp): between begin and end, allocations on `device`
// come from the private pool of `graph_id`; release hands the pool back once the graph is gone.
void caching_allocator_begin_capture(int device, uint64_t graph_id);
void caching_allocator_end_capture(int device);
void caching_allocator_release_pool(int device, uint64_t graph_id);

}  // namespace anvil::cuda
