// Device-side advance of a CUDA graph's {seed, base} random-draw state (graph_rng.cu).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace anvil::cuda {

// Enqueues device_state[1] += blocks on `stream` (captured into the graph at its end).
void advance_rng_base(uint64_t* device_state, uint64_t blocks, cudaStream_t stream);

}  // namespace anvil::cuda
