// CUDA layer norm and RMS norm (the formulas are in layer_norm_kernels.h). A row of up to
// kWarpRowLimit elements gets a warp, a longer one a block (reduce.cuh's teams, as softmax.cu).
//   forward:  one kernel; per row a pass for the mean, one for the variance about it and one
//             that writes the result (the later passes find the row in the cache).
//   backward: one kernel; per row a pass for the two row sums of grad_input, then one that
//             writes grad_input and adds dy * xhat and dy into the block's partial sums of the
//             parameter gradients ([blocks, 2, N]); a small kernel then adds the blocks'
//             partials in block order. No atomics, and the grid follows from the shape alone,
//             so the gradients are the same bits run after run.
// Where every row starts 16-byte aligned (and the parameters are aligned), each thread moves
// 16 bytes at a time. float32 and 16-bit inputs compute in float, float64 in double.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "backend/cuda/math.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/layer_norm_kernels.h"

namespace anvil::cuda {
namespace {
using backend::NormArgs;

// ---- row access ---------------------------------------------------------------------------

template <class T, int V>
struct alignas(16) Chunk {
  T v[V];
};

// Elements of T in one 16-byte access.
template <class T> inline constexpr int kVecOf = 16 / int(sizeof(T));
// Chunks a lane takes of a row in warp mode, at most (the row has at most kWarpRowLimit
// elements): a compile-time bound, so that what a lane keeps per chunk stays in registers.
template <int V> inline constexpr int kLaneChunks = int(kWarpRowLimit) / (32 * V);

// p[j, j + V) in the compute type (j a multiple of V; p 16-byte aligned when V > 1).
template <int V, class T, class C>
__device__ inline void load(const T* p, int64_t j, C (&out)[V]) {
  if constexpr (V == 1) {
    out[0] = up(p[j]);
  } else {
    const Chunk<T, V> c = *reinterpret_cast<const Chunk<T, V>*>(p + j);
#pragma unroll
    for (int i = 0; i < V; ++i) out[i] = up(c.v[i]);
  }
}

// An optional parameter: `fill` where it is absent.
template <int V, class C>
__device__ inline void load_or(const C* p, int64_t j, C fill, C (&out)[V]) {
  if (p) {
    load<V>(p, j, out);
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) out[i] = fill;
  }
}

template <int V, class T, class C>
__device__ inline void store(T* p, int64_t j, const C (&in)[V]) {
  if constexpr (V == 1) {
    p[j] = down<T>(in[0]);
  } else {
    Chunk<T, V> c;
#pragma unroll
    for (int i = 0; i < V; ++i) c.v[i] = down<T>(in[i]);
    *reinterpret_cast<Chunk<T, V>*>(p + j) = c;
  }
}

// Calls f(j, k) for the chunks of a row (of `chunks` chunks of V elements) that this thread of
// its team takes: chunk c = lane + k * team size starts at element j = c * V. In warp mode k
// runs up to kLaneChunks<V> and the loop unrolls, so f may index registers by k.
template <bool kBlock, int V, class F>
__device__ inline void for_my_chunks(int64_t chunks, F&& f) {
  using Tm = Team<kBlock>;
  if constexpr (kBlock) {
    for (int64_t c = Tm::lane(); c < chunks; c += Tm::size()) f(c * V, 0);
  } else {
#pragma unroll
    for (int k = 0; k < kLaneChunks<V>; ++k) {
      const int64_t c = Tm::lane() + int64_t(k) * 32;
      if (c < chunks) f(c * V, k);
    }
  }
}

// ---- forward ------------------------------------------------------------------------------

template <bool kBlock, int V, bool kRms, class T>
__global__ void __launch_bounds__(kReduceThreads)
    norm_forward_kernel(const T* x, T* y, const compute_t<T>* w, const compute_t<T>* b,
                        compute_t<T>* mean_out, compute_t<T>* rstd_out, int64_t rows, int64_t n,
                        compute_t<T> eps) {
  using C = compute_t<T>;
  using Tm = Team<kBlock>;
  const int64_t chunks = n / V;
  for (int64_t r = Tm::first_row(); r < rows; r += Tm::row_step()) {
    const T* xr = x + r * n;
    C mean = 0;
    if constexpr (!kRms) {
      C s = 0;
      for_my_chunks<kBlock, V>(chunks, [&](int64_t j, int) {
        C v[V];
        load<V>(xr, j, v);
#pragma unroll
        for (int i = 0; i < V; ++i) s += v[i];
      });
      mean = team_sum<kBlock>(s) / C(n);
    }
    C ss = 0;
    for_my_chunks<kBlock, V>(chunks, [&](int64_t j, int) {
      C v[V];
      load<V>(xr, j, v);
#pragma unroll
      for (int i = 0; i < V; ++i) ss += (v[i] - mean) * (v[i] - mean);
    });
    const C rstd = C(1) / m_sqrt(team_sum<kBlock>(ss) / C(n) + eps);
    if (Tm::lane() == 0) {
      if constexpr (!kRms) mean_out[r] = mean;
      rstd_out[r] = rstd;
    }
    T* yr = y + r * n;
    for_my_chunks<kBlock, V>(chunks, [&](int64_t j, int) {
      C v[V], wv[V], bv[V];
      load<V>(xr, j, v);
      load_or<V>(w, j, C(1), wv);
      load_or<V>(b, j, C(0), bv);
#pragma unroll
      for (int i = 0; i < V; ++i) v[i] = (v[i] - mean) * rstd * wv[i] + bv[i];
      store<V>(yr, j, v);
    });
  }
}

// ---- backward -----------------------------------------------------------------------------

// Partial sums of the parameter gradients per block: sum of dy * xhat (and, for layer norm,
// of dy), [kSums, n] each.
template <bool kRms> inline constexpr int kSums = kRms ? 1 : 2;

// grad_input where dx is set; the block's partial parameter sums where partials is set. The
// sums accumulate per thread over the team's rows: in warp mode in registers (then added over
// the block's warps in warp order through shared memory); in block mode in the thread's own
// columns of a [kSums, n] array, in shared memory when acc_in_shared, else in the block's
// partials themselves.
template <bool kBlock, int V, bool kRms, class T>
__global__ void __launch_bounds__(kReduceThreads)
    norm_backward_kernel(const T* dy, const T* x, const compute_t<T>* w,
                         const compute_t<T>* mean, const compute_t<T>* rstd, T* dx,
                         compute_t<T>* partials, bool acc_in_shared, int64_t rows, int64_t n) {
  using C = compute_t<T>;
  using Tm = Team<kBlock>;
  constexpr int S = kSums<kRms>;
  extern __shared__ __align__(16) unsigned char norm_shared[];
  C* shared = reinterpret_cast<C*>(norm_shared);
  const int64_t chunks = n / V;
  const bool params = partials != nullptr;
  C* block_partials = params ? partials + int64_t(blockIdx.x) * S * n : nullptr;

  C acc[kBlock ? 1 : S][kBlock ? 1 : kLaneChunks<V>][V];  // warp mode
  C* acc_mem = kBlock ? (acc_in_shared ? shared : block_partials) : nullptr;  // block mode
  if constexpr (kBlock) {
    if (params)
      for_my_chunks<kBlock, V>(chunks, [&](int64_t j, int) {
        for (int s = 0; s < S; ++s)
          for (int i = 0; i < V; ++i) acc_mem[s * n + j + i] = C(0);
      });
  } else {
#pragma unroll
    for (int s = 0; s < S; ++s)
#pragma unroll
      for (int k = 0; k < kLaneChunks<V>; ++k)
#pragma unroll
        for (int i = 0; i < V; ++i) acc[s][k][i] = C(0);
  }
  auto acc_at = [&](int s, int64_t j, int k, int i) -> C& {
    if constexpr (kBlock) return acc_mem[s * n + j + i];
    else return acc[s][k][i];
  };

  for (int64_t r = Tm::first_row(); r < rows; r += Tm::row_step()) {
    const T* dyr = dy + r * n;
    const T* xr = x + r * n;
    const C mu = kRms ? C(0) : mean[r], rs = rstd[r];
    C mean_g = 0, mean_gx = 0;  // means over the row of g = dy * w and of g * xhat
    if (dx) {
      C sg = 0, sgx = 0;
      for_my_chunks<kBlock, V>(chunks, [&](int64_t j, int) {
        C g[V], xv[V], wv[V];
        load<V>(dyr, j, g);
        load<V>(xr, j, xv);
        load_or<V>(w, j, C(1), wv);
#pragma unroll
        for (int i = 0; i < V; ++i) {
          const C gi = g[i] * wv[i];
          if constexpr (!kRms) sg += gi;
          sgx += gi * ((xv[i] - mu) * rs);
        }
      });
      if constexpr (!kRms) mean_g = team_sum<kBlock>(sg) / C(n);
      mean_gx = team_sum<kBlock>(sgx) / C(n);
    }
    for_my_chunks<kBlock, V>(chunks, [&](int64_t j, int k) {
      C g[V], xv[V], wv[V], out[V];
      load<V>(dyr, j, g);
      load<V>(xr, j, xv);
      load_or<V>(w, j, C(1), wv);
#pragma unroll
      for (int i = 0; i < V; ++i) {
        const C xh = (xv[i] - mu) * rs;
        if (params) {
          acc_at(0, j, k, i) += g[i] * xh;
          if constexpr (!kRms) acc_at(1, j, k, i) += g[i];
        }
        out[i] = rs * (g[i] * wv[i] - mean_g - xh * mean_gx);
      }
      if (dx) store<V>(dx + r * n, j, out);
    });
  }

  if (!params) return;
  if constexpr (kBlock) {
    if (acc_in_shared)
      for_my_chunks<kBlock, V>(chunks, [&](int64_t j, int) {
        for (int s = 0; s < S; ++s)
          for (int i = 0; i < V; ++i) block_partials[s * n + j + i] = shared[s * n + j + i];
      });
  } else {
    const int warp = int(threadIdx.x) / 32;
    for (int turn = 0; turn < kReduceWarps; ++turn) {
      if (warp == turn)
        for_my_chunks<kBlock, V>(chunks, [&](int64_t j, int k) {
#pragma unroll
          for (int s = 0; s < S; ++s)
#pragma unroll
            for (int i = 0; i < V; ++i) {
              C& slot = shared[s * n + j + i];
              slot = (turn == 0 ? C(0) : slot) + acc[s][k][i];
            }
        });
      __syncthreads();
    }
    for (int64_t e = threadIdx.x; e < S * n; e += blockDim.x) block_partials[e] = shared[e];
  }
}

// The parameter gradients: each column's partials added in a fixed order, so that every run
// rounds alike. A block takes 32 adjacent columns (one per lane, so the loads coalesce); its
// warps take every kParamWarps-th block's partials, and their sums are added in warp order.
constexpr int kParamWarps = kThreads / 32;
template <int S, class C>
__global__ void norm_param_grads_kernel(const C* partials, int64_t blocks, int64_t n, C* dw,
                                        C* db) {
  __shared__ C sums[S][kParamWarps][32];
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  const int64_t j = int64_t(blockIdx.x) * 32 + lane;
  C acc[S] = {};
  if (j < n)
    for (int64_t p = warp; p < blocks; p += kParamWarps)
#pragma unroll
      for (int s = 0; s < S; ++s) acc[s] += partials[(p * S + s) * n + j];
#pragma unroll
  for (int s = 0; s < S; ++s) sums[s][warp][lane] = acc[s];
  __syncthreads();
  if (warp != 0 || j >= n) return;
  C total[S] = {};
  for (int w = 0; w < kParamWarps; ++w)
#pragma unroll
    for (int s = 0; s < S; ++s) total[s] += sums[s][w][lane];
  if (dw) dw[j] = total[0];
  if constexpr (S > 1) {
    if (db) db[j] = total[1];
  }
}

// ---- launches -----------------------------------------------------------------------------

// The backward grid: at least kRowsPerTeam rows per team before it grows, at most
// kBackwardMaxBlocks blocks (each writes S * n partial sums). Fixed numbers, not read from
// the device, so that the split (and every rounding) is the same on every GPU.
constexpr int64_t kRowsPerTeam = 4;
constexpr int64_t kBackwardMaxBlocks = 512;
// Block mode keeps its accumulators in shared memory up to this size: under the 48 KiB a
// launch may ask for without opting in, with room for team_reduce's static shared memory.
constexpr size_t kMaxSharedAcc = 40 * 1024;

template <class P> P* opt(const Tensor& t) {
  return t.defined() ? static_cast<P*>(t.data_ptr()) : nullptr;
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Calls f(block, vec) with std::bool_constant tags: a block per row (else a warp), and
// 16-byte accesses (rows of a multiple of kVecOf<T> elements, every pointer aligned).
template <class T, class F>
void with_layout(int64_t n, bool aligned, F&& f) {
  using Yes = std::true_type;
  using No = std::false_type;
  const bool vec = aligned && n % kVecOf<T> == 0;
  if (n > kWarpRowLimit) {
    if (vec) f(Yes{}, Yes{});
    else f(Yes{}, No{});
  } else {
    if (vec) f(No{}, Yes{});
    else f(No{}, No{});
  }
}

template <class T, bool kRms>
void forward(const NormArgs& a, const Tensor& out, const Tensor& mean, const Tensor& rstd,
             const Tensor& input, const Tensor& weight, const Tensor& bias) {
  using C = compute_t<T>;
  const T* x = opt<const T>(input);
  T* y = opt<T>(out);
  const C* w = opt<const C>(weight);
  const C* b = opt<const C>(bias);
  const bool aligned = aligned16(x) && aligned16(y) && (!w || aligned16(w)) && (!b || aligned16(b));
  with_layout<T>(a.cols, aligned, [&](auto block, auto vec) {
    constexpr bool kBlock = decltype(block)::value;
    constexpr int V = decltype(vec)::value ? kVecOf<T> : 1;
    norm_forward_kernel<kBlock, V, kRms, T>
        <<<reduce_blocks(a.rows, kBlock), kReduceThreads, 0, current_stream()>>>(
            x, y, w, b, opt<C>(mean), opt<C>(rstd), a.rows, a.cols, C(a.eps));
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

template <class T, bool kRms>
void backward(const NormArgs& a, const Tensor& grad_input, const Tensor& grad_weight,
              const Tensor& grad_bias, const Tensor& grad_out, const Tensor& input,
              const Tensor& weight, const Tensor& mean, const Tensor& rstd) {
  using C = compute_t<T>;
  constexpr int S = kSums<kRms>;
  const int64_t M = a.rows, N = a.cols;
  const T* dy = opt<const T>(grad_out);
  const T* x = opt<const T>(input);
  const C* w = opt<const C>(weight);
  T* dx = opt<T>(grad_input);
  C* dw = opt<C>(grad_weight);
  C* db = opt<C>(grad_bias);
  const bool params = dw || db;

  const bool block = N > kWarpRowLimit;
  const int64_t per_block = (block ? 1 : kReduceWarps) * kRowsPerTeam;
  const int64_t blocks = std::clamp<int64_t>((M + per_block - 1) / per_block, 1,
                                             kBackwardMaxBlocks);
  const size_t acc_bytes = size_t(S * N) * sizeof(C);
  const bool acc_in_shared = !block || acc_bytes <= kMaxSharedAcc;  // warp mode: N <= 1024
  const size_t shared = params && acc_in_shared ? acc_bytes : 0;
  Tensor partials;  // freed after the launches below are queued (the allocator is stream-ordered)
  if (params)
    partials = Tensor::empty({blocks * S * N}, TensorOptions(dtype_v<C>).device(input.device()));
  C* pp = opt<C>(partials);

  const bool aligned = aligned16(dy) && aligned16(x) && (!dx || aligned16(dx)) &&
                       (!w || aligned16(w));
  with_layout<T>(N, aligned, [&](auto blk, auto vec) {
    constexpr bool kBlock = decltype(blk)::value;
    constexpr int V = decltype(vec)::value ? kVecOf<T> : 1;
    norm_backward_kernel<kBlock, V, kRms, T>
        <<<unsigned(blocks), kReduceThreads, shared, current_stream()>>>(
            dy, x, w, opt<const C>(mean), opt<const C>(rstd), dx, pp, acc_in_shared, M, N);
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
  if (!params) return;
  norm_param_grads_kernel<S, C><<<unsigned((N + 31) / 32), kThreads, 0, current_stream()>>>(
      pp, blocks, N, dw, db);
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

// ---- entry points -------------------------------------------------------------------------

void layer_norm_cuda(const NormArgs& a, const Tensor& out, const Tensor& mean, const Tensor& rstd,
                     const Tensor& input, const Tensor& weight, const Tensor& bias) {
  DeviceGuard guard(input.device().index);
  ANVIL_DISPATCH_FLOAT(input.dtype(), "layer_norm", [&] {
    forward<dev_t<scalar_t>, false>(a, out, mean, rstd, input, weight, bias);
  });
}

void layer_norm_backward_cuda(const NormArgs& a, const Tensor& grad_input,
                              const Tensor& grad_weight, const Tensor& grad_bias,
                              const Tensor& grad_out, const Tensor& input, const Tensor& weight,
                              const Tensor& mean, const Tensor& rstd) {
  DeviceGuard guard(input.device().index);
  ANVIL_DISPATCH_FLOAT(input.dtype(), "layer_norm_backward", [&] {
    backward<dev_t<scalar_t>, false>(a, grad_input, grad_weight, grad_bias, grad_out, input,
                                     weight, mean, rstd);
  });
}

void rms_norm_cuda(const NormArgs& a, const Tensor& out, const Tensor& rstd, const Tensor& input,
                   const Tensor& weight) {
  DeviceGuard guard(input.device().index);
  ANVIL_DISPATCH_FLOAT(input.dtype(), "rms_norm", [&] {
    forward<dev_t<scalar_t>, true>(a, out, Tensor(), rstd, input, weight, Tensor());
  });
}

void rms_norm_backward_cuda(const NormArgs& a, const Tensor& grad_input,
                            const Tensor& grad_weight, const Tensor& grad_out,
                            const Tensor& input, const Tensor& weight, const Tensor& rstd) {
  DeviceGuard guard(input.device().index);
  ANVIL_DISPATCH_FLOAT(input.dtype(), "rms_norm_backward", [&] {
    backward<dev_t<scalar_t>, true>(a, grad_input, grad_weight, Tensor(), grad_out, input,
                                    weight, Tensor(), rstd);
  });
}

ANVIL_REGISTER_KERNEL(backend::layer_norm_kernels, CUDA, &layer_norm_cuda);
ANVIL_REGISTER_KERNEL(backend::layer_norm_backward_kernels, CUDA, &layer_norm_backward_cuda);
ANVIL_REGISTER_KERNEL(backend::rms_norm_kernels, CUDA, &rms_norm_cuda);
ANVIL_REGISTER_KERNEL(backend::rms_norm_backward_kernels, CUDA, &rms_norm_backward_cuda);

}  // namespace
}  // namespace anvil::cuda
