// Page-locked ("pinned") host memory, the source of asynchronous batch uploads.
//
//   Tensor batch = host_batch.pin_memory();   // a CPU tensor in page-locked memory
//   gpu_batch.copy_(batch);                    // returns at once; the copy runs in stream order
//
// The CUDA backend provides it (a caching allocator whose blocks are reused only once the
// copies that read them have finished). Without a CUDA device there is nothing to pin for.
#pragma once
#include <cstddef>

#include "anvil/core/tensor.h"

namespace anvil {

// Whether pin_memory() can work here (a CUDA backend and a device).
bool pinned_memory_available();

namespace detail {
// Set by the CUDA backend when it is linked in.
extern void* (*pinned_allocate_hook)(size_t nbytes);
extern void (*pinned_free_hook)(void* p);
extern bool (*is_pinned_hook)(const void* p);
}  // namespace detail

}  // namespace anvil
