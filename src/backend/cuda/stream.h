// The stream every CUDA kernel, copy and library call of the backend is issued on.
//
// It is the calling thread's default stream (cudaStreamPerThread), not the legacy stream 0:
// the legacy stream cannot be captured into a CUDA graph and synchronises with every other
// stream. The caching allocator reuses memory in this stream's order, so all work of one
// training loop stays on one thread.
#pragma once
#include <cuda_runtime.h>

namespace anvil::cuda {

inline cudaStream_t current_stream() { return cudaStreamPerThread; }

// Waits for the calling thread's stream of cuda:`device`, then raises the error a kernel
// recorded there (error_flag.h). The one place, with device -> host copies, where the host
// waits for the device.
void synchronize(int device);

}  // namespace anvil::cuda
