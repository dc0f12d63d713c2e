// Multi-tensor launches (as PyTorch's multi_tensor_apply): the pointers and sizes of up to
// kMaxTensors tensors travel in one kernel-argument struct, and each of up to kMaxBlocks
// blocks updates one chunk of kChunk elements of one of them, found through a block table.
// A tensor too long for the blocks left in one launch continues in the next.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/cuda/launch.cuh"

namespace anvil::cuda::tensor_lists {

// Small chunks and many blocks per launch: a model of a few hundred thousand parameters must
// still spread over every SM (65536-element chunks left an MLP's Adam step on ~15 blocks and
// made it 10x slower than the memory traffic allows).
constexpr int64_t kChunk = 4096;  // elements per block: 8 per thread
constexpr int kBlockThreads = 512;
constexpr int kMaxBlocks = 2048;

// Which tensor (slot in the launch) and which of its chunks each block takes.
struct BlockTable {
  uint8_t tensor[kMaxBlocks];
  int32_t chunk[kMaxBlocks];
};

// The element range [begin, end) of this block's chunk of a tensor of n elements.
__device__ inline void chunk_range(const BlockTable& t, const int64_t* numel, int& slot,
                                   int64_t& begin, int64_t& end) {
  slot = t.tensor[blockIdx.x];
  begin = int64_t(t.chunk[blockIdx.x]) * kChunk;
  end = begin + kChunk < numel[slot] ? begin + kChunk : numel[slot];
}

// Splits `numels` into launches. Args has `int64_t numel[kMaxTensors]` and `BlockTable blocks`;
// set(args, slot, i) fills in tensor i's pointers at `slot`; launch(args, blocks) launches.
// Empty tensors are skipped.
template <int kMaxTensors, class Args, class Set, class Launch>
void for_each_launch(const std::vector<int64_t>& numels, Args& a, Set set, Launch launch) {
  static_assert(kMaxTensors <= 255, "slots are stored as uint8_t");
  int slot = 0, blocks = 0;
  for (size_t i = 0; i < numels.size(); ++i) {
    const int64_t n = numels[i];
    if (n == 0) continue;
    set(a, slot, i);
    a.numel[slot] = n;
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    for (int64_t c = 0; c < chunks; ++c) {
      a.blocks.tensor[blocks] = uint8_t(slot);
      a.blocks.chunk[blocks] = int32_t(c);
      ++blocks;
      const bool last_chunk = c == chunks - 1;
      if (blocks == kMaxBlocks || (last_chunk && slot + 1 == kMaxTensors)) {
        launch(a, blocks);
        blocks = 0;
        if (last_chunk) {
          slot = -1;  // tensor i is done: the next one starts at slot 0
        } else {
          slot = 0;  // tensor i goes on in the next launch, from slot 0
          set(a, 0, i);
          a.numel[0] = n;
        }
      }
    }
    ++slot;
  }
  if (blocks > 0) launch(a, blocks);
}

// Kernel parameters must stay within 32,764 bytes: the limit since CUDA 12.1 on Volta and
// newer (every GPU the CUDA 13 toolkit builds for); the block table takes most of it.
template <class... Ts>
constexpr bool fits_kernel_params() {
  return (sizeof(Ts) + ... + 0) <= 32000;
}

}  // namespace anvil::cuda::tensor_lists
