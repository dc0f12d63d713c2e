// The caching CUDA allocator behind every CUDA tensor (see anvil/core/memory_stats.h for the
// size classes and the stream assumption it relies on).
#pragma once
#include <cstddef>

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

}  // namespace anvil::cuda
