// Row reductions for CUDA kernels: a "team" (one warp, or one block of kReduceThreads) reduces
// one row; every thread of the team gets the result. Used by reduce.cu, softmax.cu and
// cross_entropy.cu.
#pragma once
#include "backend/cuda/launch.cuh"

namespace anvil::cuda {

constexpr int kReduceThreads = 256;
constexpr int kReduceWarps = kReduceThreads / 32;
// Rows up to this long get a warp each; longer rows get a block.
constexpr int64_t kWarpRowLimit = 1024;

template <class V> __device__ inline V shfl_xor(V v, int mask) {
  return __shfl_xor_sync(0xffffffffu, v, mask);
}

// The team's lane and size, and the first row and row step of a grid-stride loop over rows.
template <bool kBlock> struct Team {
  __device__ static int lane() { return kBlock ? int(threadIdx.x) : int(threadIdx.x % 32); }
  __device__ static int size() { return kBlock ? int(blockDim.x) : 32; }
  __device__ static int64_t first_row() {
    return kBlock ? int64_t(blockIdx.x) : int64_t(blockIdx.x) * kReduceWarps + threadIdx.x / 32;
  }
  __device__ static int64_t row_step() {
    return kBlock ? int64_t(gridDim.x) : int64_t(gridDim.x) * kReduceWarps;
  }
};

// Combines every team member's `v` with `op` (commutative; the order is fixed, so results are
// deterministic). S is shuffled member by member through `shuffle(S, mask)`. In block mode
// every thread of the block must call it (it synchronises the block).
template <bool kBlock, class S, class Op, class Shuffle>
__device__ inline S team_reduce(S v, Op op, Shuffle shuffle) {
  for (int mask = 16; mask > 0; mask >>= 1) v = op(v, shuffle(v, mask));
  if constexpr (kBlock) {
    __shared__ S partial[kReduceWarps];
    const int warp = threadIdx.x / 32;
    __syncthreads();  // earlier readers of `partial` are done
    if (threadIdx.x % 32 == 0) partial[warp] = v;
    __syncthreads();
    v = partial[0];
    for (int w = 1; w < kReduceWarps; ++w) v = op(v, partial[w]);
  }
  return v;
}

struct Plus {
  template <class V> __device__ V operator()(V a, V b) const { return a + b; }
};
struct MaxOf {
  template <class V> __device__ V operator()(V a, V b) const { return a > b ? a : b; }
};
struct Shfl {
  template <class V> __device__ V operator()(V v, int mask) const { return shfl_xor(v, mask); }
};

template <bool kBlock, class V> __device__ inline V team_sum(V v) {
  return team_reduce<kBlock>(v, Plus{}, Shfl{});
}
// Max that ignores NaN unless every value is NaN (fmax semantics, as the CPU's std::fmax).
struct FMax {
  template <class V> __device__ V operator()(V a, V b) const {
    if constexpr (std::is_same_v<V, float>) return fmaxf(a, b);
    else return fmax(a, b);
  }
};
template <bool kBlock, class V> __device__ inline V team_fmax(V v) {
  return team_reduce<kBlock>(v, FMax{}, Shfl{});
}

inline int reduce_blocks(int64_t rows, bool block_mode) {
  const int64_t per_block = block_mode ? 1 : kReduceWarps;
  return int(std::max<int64_t>(1, std::min<int64_t>((rows + per_block - 1) / per_block, 65535)));
}

}  // namespace anvil::cuda
