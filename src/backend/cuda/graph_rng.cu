// The last node of a CUDA graph that draws random numbers: moves the graph's device-side draw
// base past the blocks one replay used, so that the next replay draws fresh numbers without a
// host-to-device copy (graph.cpp writes {seed, base} from the host only when the generator
// has moved in between, e.g. after eager draws or manual_seed).
#include "backend/cuda/graph_rng.h"
#include "backend/cuda/runtime.h"

namespace anvil::cuda {
namespace {

__global__ void advance_base_kernel(uint64_t* state, uint64_t blocks) { state[1] += blocks; }

}  // namespace

void advance_rng_base(uint64_t* device_state, uint64_t blocks, cudaStream_t stream) {
  advance_base_kernel<<<1, 1, 0, stream>>>(device_state, blocks);
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

}  // namespace anvil::cuda
