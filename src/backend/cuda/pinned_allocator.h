// Page-locked host memory for batch uploads (Tensor::pin_memory), cached like PyTorch's
// CachingHostAllocator: a host-to-device copy from such memory runs asynchronously, so a
// freed block is reused only after the copies that read it (recorded with record_use) have
// finished on the device.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace anvil::cuda {

void* pinned_allocate(size_t nbytes);
void pinned_free(void* p);
// Whether `p` points into a block of this allocator.
bool is_pinned(const void* p);
// A copy on `stream` reads the block holding `p`: its reuse waits for that copy.
void pinned_record_use(const void* p, cudaStream_t stream);

}  // namespace anvil::cuda
