// Per-channel sums over a contiguous [N, C, S] tensor (S = the product of the dims after C),
// spread over several blocks per channel so that a few large channels still fill the GPU.
// Pass 1 writes one partial sum per (split, channel); pass 2 adds a channel's partials in split
// order and hands the total to a per-channel `finish`. No atomics, and the split depends only
// on the shape, so results are the same run after run and on every GPU.
//
// What is summed is a "term": term.at(c) gives a device functor for channel c that maps the
// element offset of one of the channel's values to its contribution, a double (one sum) or
// Sums2 (two sums at once). Sums accumulate in double: the pass is bound by memory, not by
// arithmetic.
#pragma once
#include <algorithm>

#include "backend/cuda/reduce.cuh"

namespace anvil::cuda {

// Two sums accumulated together. No member initialisers: __shared__ arrays need a trivial type.
struct Sums2 {
  double a, b;
};
__device__ inline Sums2 operator+(Sums2 x, Sums2 y) { return {x.a + y.a, x.b + y.b}; }

struct ShuffleSums {
  __device__ double operator()(double v, int mask) const { return shfl_xor(v, mask); }
  __device__ Sums2 operator()(Sums2 v, int mask) const {
    return {shfl_xor(v.a, mask), shfl_xor(v.b, mask)};
  }
};

// About one wave of resident blocks on a large GPU; fixed (not read from the device) so that
// the split, and with it every rounding, is the same on every GPU.
constexpr int64_t kChannelReduceBlocks = 1024;
// S == 1 (a [M, C] matrix, summed down its columns): a block takes 32 adjacent channels (one
// warp reads 32 consecutive values of a row) and 8 rows at a time.
constexpr int kColumnTile = 32, kColumnRows = 8, kColumnThreads = kColumnTile * kColumnRows;
// Loads each thread issues before it adds them, to keep enough reads in flight.
constexpr int kReduceUnroll = 4;

// How each channel's values are split over blocks: `splits` blocks per channel (per tile of
// kColumnTile channels when S == 1), each taking `per_split` consecutive values (rows when
// S == 1).
struct ChannelSplit {
  int64_t splits = 1, per_split = 1;
};

// `count` values per channel, `groups` independent channels (or channel tiles), at least
// `min_per_split` values per block unless a channel has fewer.
inline ChannelSplit split_channels(int64_t count, int64_t groups, int64_t min_per_split) {
  int64_t splits = std::max<int64_t>(1, kChannelReduceBlocks / std::max<int64_t>(groups, 1));
  splits = std::min(splits, std::max<int64_t>(1, count / min_per_split));
  splits = std::min<int64_t>(splits, 65535);  // gridDim.y
  ChannelSplit s;
  s.per_split = std::max<int64_t>(1, (count + splits - 1) / splits);
  s.splits = std::max<int64_t>(1, (count + s.per_split - 1) / s.per_split);
  return s;
}

// Pass 1 for S > 1: block (c, split) sums values [split * per_split, ...) of channel c, value
// j being element (n, s) = (j / S, j % S). Threads walk j with a stride of blockDim.x and carry
// (n, s) along, so the loop has no division.
template <class Index, class Acc, class Term>
__global__ void __launch_bounds__(kReduceThreads)
    channel_partials_rows_kernel(Index N, Index C, Index S, Index per_split, Term term,
                                 Acc* partials) {
  const Index c = Index(blockIdx.x), split = Index(blockIdx.y), count = N * S;
  const Index begin = split * per_split;
  const Index end = count - begin < per_split ? count : begin + per_split;
  Acc acc{};
  Index j = begin + Index(threadIdx.x);
  if (j < end) {
    const auto at = term.at(c);
    const Index step = Index(blockDim.x), step_n = step / S, step_s = step - step_n * S;
    Index n = j / S, s = j - n * S;
    auto offset_and_advance = [&] {
      const Index off = (n * C + c) * S + s;
      n += step_n;
      s += step_s;
      if (s >= S) {
        s -= S;
        ++n;
      }
      return off;
    };
    for (; j + (kReduceUnroll - 1) * step < end; j += kReduceUnroll * step) {
      Index off[kReduceUnroll];
#pragma unroll
      for (int k = 0; k < kReduceUnroll; ++k) off[k] = offset_and_advance();
      Acc v[kReduceUnroll];
#pragma unroll
      for (int k = 0; k < kReduceUnroll; ++k) v[k] = at(off[k]);
#pragma unroll
      for (int k = 0; k < kReduceUnroll; ++k) acc = acc + v[k];
    }
    for (; j < end; j += step) acc = acc + at(offset_and_advance());
  }
  acc = team_reduce<true>(acc, Plus{}, ShuffleSums{});
  if (threadIdx.x == 0) partials[split * C + c] = acc;
}

// Pass 1 for S == 1, x a [M, C] matrix: block (tile, split) sums rows [split * per_split, ...)
// of channels tile * kColumnTile + threadIdx.x, thread row threadIdx.y taking every
// kColumnRows-th row; the rows of the block are then added in order through shared memory.
template <class Index, class Acc, class Term>
__global__ void __launch_bounds__(kColumnThreads)
    channel_partials_columns_kernel(Index M, Index C, Index per_split, Term term, Acc* partials) {
  __shared__ Acc rows[kColumnRows][kColumnTile + 1];
  const Index c = Index(blockIdx.x) * kColumnTile + Index(threadIdx.x);
  const Index split = Index(blockIdx.y), begin = split * per_split;
  const Index end = M - begin < per_split ? M : begin + per_split;
  Acc acc{};
  if (c < C) {
    const auto at = term.at(c);
    Index r = begin + Index(threadIdx.y);
    for (; r + (kReduceUnroll - 1) * kColumnRows < end; r += kReduceUnroll * kColumnRows) {
      Acc v[kReduceUnroll];
#pragma unroll
      for (int k = 0; k < kReduceUnroll; ++k) v[k] = at((r + k * kColumnRows) * C + c);
#pragma unroll
      for (int k = 0; k < kReduceUnroll; ++k) acc = acc + v[k];
    }
    for (; r < end; r += kColumnRows) acc = acc + at(r * C + c);
  }
  rows[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    Acc total = rows[0][threadIdx.x];
    for (int k = 1; k < kColumnRows; ++k) total = total + rows[k][threadIdx.x];
    partials[split * C + c] = total;
  }
}

// Pass 2: a thread per channel adds its partials in split order (zero sums when `partials` is
// null) and calls finish(c, total).
template <class Acc, class Finish>
__global__ void channel_finish_kernel(const Acc* partials, int64_t splits, int64_t C,
                                      Finish finish) {
  ANVIL_GRID_STRIDE(c, C) {
    Acc total{};
    if (partials) {
      total = partials[c];
      for (int64_t s = 1; s < splits; ++s) total = total + partials[s * C + c];
    }
    finish(c, total);
  }
}

// The partial sums of pass 1, kept alive until pass 2 is enqueued.
template <class Acc>
struct ChannelPartials {
  Tensor buffer;  // splits * C values of Acc
  int64_t splits = 0;
  const Acc* data() const { return static_cast<const Acc*>(buffer.data_ptr()); }
};

// Pass 1 over x viewed as [N, C, S] on cuda:`device` (the caller holds a DeviceGuard).
template <class Acc, class Term>
ChannelPartials<Acc> channel_partials(int device, int64_t N, int64_t C, int64_t S, Term term) {
  static_assert(sizeof(Acc) % sizeof(double) == 0, "partials are stored as doubles");
  const bool narrow = N * C * S < (int64_t(1) << 31);  // 32-bit index arithmetic fits
  const bool columns = S == 1;
  const ChannelSplit sp = columns ? split_channels(N, (C + kColumnTile - 1) / kColumnTile,
                                                   int64_t(kColumnRows) * kReduceUnroll * 4)
                                  : split_channels(N * S, C, int64_t(kReduceThreads) * 16);
  ChannelPartials<Acc> p;
  p.splits = sp.splits;
  p.buffer = Tensor::empty({sp.splits * C * int64_t(sizeof(Acc) / sizeof(double))},
                           TensorOptions(kFloat64).device(Device(DeviceKind::CUDA, device)));
  Acc* out = static_cast<Acc*>(p.buffer.data_ptr());
  auto launch = [&](auto index) {
    using Index = decltype(index);
    if (columns) {
      const dim3 grid(unsigned((C + kColumnTile - 1) / kColumnTile), unsigned(sp.splits));
      channel_partials_columns_kernel<Index, Acc, Term>
          <<<grid, dim3(kColumnTile, kColumnRows), 0, current_stream()>>>(
              Index(N), Index(C), Index(sp.per_split), term, out);
    } else {
      const dim3 grid(unsigned(C), unsigned(sp.splits));
      channel_partials_rows_kernel<Index, Acc, Term><<<grid, kReduceThreads, 0, current_stream()>>>(
          Index(N), Index(C), Index(S), Index(sp.per_split), term, out);
    }
  };
  if (narrow) launch(uint32_t{});
  else launch(int64_t{});
  ANVIL_CUDA_CHECK(cudaGetLastError());
  return p;
}

// Pass 2 over C channels; `partials` may be null (every total is zero).
template <class Acc, class Finish>
void channel_finish(const ChannelPartials<Acc>* partials, int64_t C, Finish finish) {
  channel_finish_kernel<Acc, Finish><<<blocks_for(C), kThreads, 0, current_stream()>>>(
      partials ? partials->data() : nullptr, partials ? partials->splits : 0, C, finish);
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

}  // namespace anvil::cuda
