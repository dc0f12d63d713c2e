// Fused attention backward (FlashAttention-2's scheme), in up to three launches:
//  1. prep: per query row the log2-domain lse (for P = 2^(s * scale log2 e - lse2)) and
//     D_i = rowsum(dO_i * O_i), the term the softmax backward subtracts; it zeroes the float32
//     dQ accumulator too.
//  2. A CTA per key/value tile of kBlockN keys (and kv head, so grouped-query heads sum into
//     one dK/dV without atomics) walks every query tile of every query head of its group:
//     S^T = K Q^T and dP^T = V dO^T are recomputed with the warps split along the keys, so P^T
//     and dS^T = P^T (dP^T - D) sit in each warp's registers as the A operands of
//     dV += P^T dO and dK += dS^T Q, accumulated in float32 registers over the whole walk.
//     dS^T also goes to shared memory, where the warps, split along the queries now, take
//     dQ += dS K and add it into the float32 accumulator with atomics.
//  3. dQ in the input dtype: the accumulator scaled and rounded (convert kernel). Atomics add
//     in an arbitrary order, so under use_deterministic_algorithms a separate kernel computes
//     dQ instead, a CTA per query tile walking the key tiles (S, dP and dS recomputed there).
#include "anvil/core/determinism.h"
#include "backend/cuda/flash_attention.cuh"
#include "backend/cuda/flash_attention_backward_dq.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/stream.h"

namespace anvil::cuda::flash {
namespace {
using backend::AttentionArgs;

// ---- 1. prep -----------------------------------------------------------------------------
// A team of D / 8 lanes per row, 8 elements (16 bytes) each.
template <class T, int D>
__global__ void flash_attention_backward_prep_kernel(BwdParams p, int64_t rows) {
  constexpr int kLanes = D / 8;
  const int64_t row = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / kLanes;
  const int c = (threadIdx.x % kLanes) * 8;
  float acc = 0.f;
  if (row < rows) {
    const uint4 o = *reinterpret_cast<const uint4*>(static_cast<const T*>(p.out) + row * D + c);
    const uint4 d = *reinterpret_cast<const uint4*>(static_cast<const T*>(p.dout) + row * D + c);
    const T* ov = reinterpret_cast<const T*>(&o);
    const T* dv = reinterpret_cast<const T*>(&d);
#pragma unroll
    for (int e = 0; e < 8; ++e) acc = fmaf(up(ov[e]), up(dv[e]), acc);
  }
#pragma unroll
  for (int off = kLanes / 2; off > 0; off /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (row >= rows) return;
  if (c == 0) {
    const float lse = p.lse[row];
    // A row that saw no key (lse -inf) must get P = 0: 2^(s - inf).
    p.stats[row] = make_float2(lse == -INFINITY ? INFINITY : lse * kLog2e, acc);
  }
  if (p.dq_accum) {
    float4* z = reinterpret_cast<float4*>(p.dq_accum + row * D + c);
    z[0] = make_float4(0.f, 0.f, 0.f, 0.f);
    z[1] = make_float4(0.f, 0.f, 0.f, 0.f);
  }
}

// ---- 2. dK, dV (and dQ by atomics) -------------------------------------------------------
template <int D>
struct BwdConfig {
  static constexpr int kBlockM = 64, kBlockN = 128, kWarps = 8;  // FlashAttention-2's
};

template <int D>
constexpr int bwd_smem_bytes() {
  using C = BwdConfig<D>;
  // K, V; Q and dO twice; dS^T; lse2 and D twice.
  return (2 * C::kBlockN * D + 4 * C::kBlockM * D + C::kBlockN * C::kBlockM) * 2 +
         2 * C::kBlockM * 8;
}

template <class T, int D, bool kCausal, bool kDropout, bool kAtomicDQ>
__global__ void __launch_bounds__(BwdConfig<D>::kWarps * 32, 1)
    flash_attention_backward_kernel(BwdParams p) {
  using C = BwdConfig<D>;
  constexpr int kBlockM = C::kBlockM, kBlockN = C::kBlockN, kThreads = C::kWarps * 32;
  static_assert(kBlockN == 16 * C::kWarps, "a warp owns 16 keys");
  constexpr int kQT = kBlockM / 8;  // n-tiles (of queries) of S^T
  constexpr int kDT = D / 8;        // n-tiles of dK and dV
  // dQ = dS K: warps tile [kBlockM x D] as kWM (16 rows each) x kWD (kDQ columns each).
  constexpr int kWM = kBlockM / 16, kWD = C::kWarps / kWM, kDQ = D / kWD, kDQT = kDQ / 8;
  static_assert(kWM * kWD == C::kWarps && kDQ % 16 == 0);

  extern __shared__ __align__(128) unsigned char smem[];
  constexpr uint32_t kTileQ = kBlockM * D * 2, kTileK = kBlockN * D * 2;
  const uint32_t sK = smem_addr(smem), sV = sK + kTileK;
  const uint32_t sQ0 = sV + kTileK;              // Q[0], Q[1], dO[0], dO[1]
  const uint32_t sdS = sQ0 + 4 * kTileQ;         // dS^T: [kBlockN keys][kBlockM queries]
  const uint32_t sStats = sdS + kBlockN * kBlockM * 2;  // float2 {lse2, D} [2][kBlockM]
  const float2* stats_smem =
      reinterpret_cast<const float2*>(smem + (sStats - smem_addr(smem)));

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  const int n0 = blockIdx.x * kBlockN;
  const int64_t b = blockIdx.z, hk = blockIdx.y;
  const int64_t bh_kv = b * (p.heads / p.group) + hk;
  const T* k = static_cast<const T*>(p.k) + bh_kv * p.kv_len * D;
  const T* v = static_cast<const T*>(p.v) + bh_kv * p.kv_len * D;
  const Dropout drop = kDropout ? p.drop.resolved() : p.drop;

  // Query tiles: under the causal mask those ending before key n0 see none of these keys.
  const int n_m = (p.q_len + kBlockM - 1) / kBlockM;
  const int m_first = kCausal ? min(n0 / kBlockM, n_m) : 0;
  const int per_head = n_m - m_first;
  const int n_iter = per_head * p.group;
  auto head_of = [&](int it) { return b * p.heads + hk * p.group + it / per_head; };
  auto row0_of = [&](int it) { return (m_first + it % per_head) * kBlockM; };
  auto load_queries = [&](int it, int buf) {
    const int64_t bh = head_of(it);
    const int m0 = row0_of(it);
    load_tile<kBlockM, D, kThreads>(sQ0 + buf * kTileQ,
                                    static_cast<const T*>(p.q) + bh * p.q_len * D, m0, p.q_len,
                                    tid);
    load_tile<kBlockM, D, kThreads>(sQ0 + (2 + buf) * kTileQ,
                                    static_cast<const T*>(p.dout) + bh * p.q_len * D, m0,
                                    p.q_len, tid);
    if (tid < kBlockM) {
      const bool valid = m0 + tid < p.q_len;
      const float2* src = p.stats + bh * p.q_len + (valid ? m0 + tid : 0);
      cp_async8(sStats + (buf * kBlockM + tid) * 8, src, valid);
    }
  };

  load_tile<kBlockN, D, kThreads>(sK, k, n0, p.kv_len, tid);
  load_tile<kBlockN, D, kThreads>(sV, v, n0, p.kv_len, tid);
  if (n_iter > 0) load_queries(0, 0);
  cp_async_commit();

  const int wkey = warp * 16;  // the warp's keys in the tile
  const Frag<D> fa = a_frag<D>(lane), fbt = bt_frag<D>(lane), fb = b_frag<D>(lane);
  const Frag<kBlockM> fs = bt_frag<kBlockM>(lane);
  float dk[kDT][4], dv[kDT][4];
#pragma unroll
  for (int dt = 0; dt < kDT; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[dt][e] = dv[dt][e] = 0.f;

  for (int it = 0; it < n_iter; ++it) {
    const int buf = it & 1;
    const uint32_t sQ = sQ0 + buf * kTileQ, sdO = sQ0 + (2 + buf) * kTileQ;
    const int64_t bh = head_of(it);
    const int m0 = row0_of(it);
    cp_async_wait<0>();
    // Tile it is in; every warp is done with tile it - 1 (its buffers take tile it + 1) and
    // with the dS^T of it - 1.
    __syncthreads();
    if (it + 1 < n_iter) {
      load_queries(it + 1, buf ^ 1);
      cp_async_commit();
    }

    // S^T = K Q^T and dP^T = V dO^T for the warp's 16 keys.
    float s[kQT][4], dp[kQT][4];
#pragma unroll
    for (int nt = 0; nt < kQT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[nt][e] = dp[nt][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t ak[4], av[4];
      ldsm_x4(sK + fa.at(wkey, kk * 16), ak);
      ldsm_x4(sV + fa.at(wkey, kk * 16), av);
#pragma unroll
      for (int np = 0; np < kQT / 2; ++np) {
        uint32_t bq[4], bo[4];
        ldsm_x4(sQ + fbt.at(np * 16, kk * 16), bq);
        ldsm_x4(sdO + fbt.at(np * 16, kk * 16), bo);
        mma<T>(s[2 * np], ak, bq[0], bq[1]);
        mma<T>(s[2 * np + 1], ak, bq[2], bq[3]);
        mma<T>(dp[2 * np], av, bo[0], bo[1]);
        mma<T>(dp[2 * np + 1], av, bo[2], bo[3]);
      }
    }

    // P^T (dropped: pd) and dS^T = P^T (dP^T * keep / (1 - p) - D). Element e of n-tile nt:
    // key n0 + wkey + g + 8 (e / 2), query m0 + 8 nt + 2t + e % 2.
    const bool mask = m0 + kBlockM > p.q_len || n0 + wkey + 16 > p.kv_len ||
                      (kCausal && n0 + wkey + 15 > m0);
    const float2* st = stats_smem + buf * kBlockM;
#pragma unroll
    for (int nt = 0; nt < kQT; ++nt) {
      // Keep bits of the warp's 16 keys for the thread's two queries.
      uint32_t keep[2] = {~0u, ~0u};
      if constexpr (kDropout) {
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int i = m0 + nt * 8 + 2 * t + c;
          keep[c] = drop.keep16(uint64_t(bh * p.q_len + i) * uint64_t(p.kv_len) + n0 + wkey, g);
        }
      }
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int qi = nt * 8 + 2 * t + (e & 1);
        const float2 row = st[qi];  // {lse2, D}
        float pr = fast_exp2(fmaf(s[nt][e], p.scale_log2, -row.x));
        if (mask) {
          const int i = m0 + qi, j = n0 + wkey + g + (e >> 1) * 8;
          if (i >= p.q_len || j >= p.kv_len || (kCausal && j > i)) pr = 0.f;
        }
        const bool kept = (keep[e & 1] >> (g + (e >> 1) * 8)) & 1;
        const float dpv = kDropout ? (kept ? dp[nt][e] * drop.scale : 0.f) : dp[nt][e];
        dp[nt][e] = pr * (dpv - row.y);
        s[nt][e] = kDropout && !kept ? 0.f : pr;
      }
    }

    // dV += P^T dO and dK += dS^T Q, k = the tile's queries.
#pragma unroll
    for (int kk = 0; kk < kBlockM / 16; ++kk) {
      uint32_t ap[4], as[4];
      c_to_a<T>(s[2 * kk], s[2 * kk + 1], ap);
      c_to_a<T>(dp[2 * kk], dp[2 * kk + 1], as);
#pragma unroll
      for (int dd = 0; dd < kDT / 2; ++dd) {
        uint32_t bo[4], bq[4];
        ldsm_x4_trans(sdO + fb.at(kk * 16, dd * 16), bo);
        ldsm_x4_trans(sQ + fb.at(kk * 16, dd * 16), bq);
        mma<T>(dv[2 * dd], ap, bo[0], bo[1]);
        mma<T>(dv[2 * dd + 1], ap, bo[2], bo[3]);
        mma<T>(dk[2 * dd], as, bq[0], bq[1]);
        mma<T>(dk[2 * dd + 1], as, bq[2], bq[3]);
      }
    }

    if constexpr (kAtomicDQ) {
      // dS^T to shared memory: row = key, column = query.
#pragma unroll
      for (int nt = 0; nt < kQT; ++nt)
#pragma unroll
        for (int hr = 0; hr < 2; ++hr)
          *reinterpret_cast<uint32_t*>(
              smem + (sdS - sK) + swizzle<kBlockM>(wkey + g + hr * 8, nt * 8 + 2 * t)) =
              pack2<T>(dp[nt][2 * hr], dp[nt][2 * hr + 1]);
      __syncthreads();
      // dQ[rows wm * 16.., columns wd * kDQ..] += dS K, k = the tile's keys.
      const int wm = warp % kWM, wd = warp / kWM;
      float dq[kDQT][4];
#pragma unroll
      for (int nt = 0; nt < kDQT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) dq[nt][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < kBlockN / 16; ++kk) {
        uint32_t a[4];
        ldsm_x4_trans(sdS + fs.at(kk * 16, wm * 16), a);
#pragma unroll
        for (int dd = 0; dd < kDQT / 2; ++dd) {
          uint32_t bk[4];
          ldsm_x4_trans(sK + fb.at(kk * 16, wd * kDQ + dd * 16), bk);
          mma<T>(dq[2 * dd], a, bk[0], bk[1]);
          mma<T>(dq[2 * dd + 1], a, bk[2], bk[3]);
        }
      }
      float* acc = p.dq_accum + bh * p.q_len * D;
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        const int i = m0 + wm * 16 + g + hr * 8;
        if (i < p.q_len) {
#pragma unroll
          for (int nt = 0; nt < kDQT; ++nt)
            atomicAdd(reinterpret_cast<float2*>(acc + int64_t(i) * D + wd * kDQ + nt * 8 + 2 * t),
                      make_float2(dq[nt][2 * hr], dq[nt][2 * hr + 1]));
        }
      }
    }
  }

  // dK = scale * sum dS^T Q, dV = sum P^T dO / (1 - p): staged in the warp's own rows of the K
  // and V tiles once every warp is done reading them, then written in whole rows.
  cp_async_wait<0>();  // (with no query tile to visit, K and V may still be landing)
  __syncthreads();
  const float dv_scale = kDropout ? drop.scale : 1.f;
#pragma unroll
  for (int dt = 0; dt < kDT; ++dt)
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const uint32_t off = swizzle<D>(wkey + g + hr * 8, dt * 8 + 2 * t);
      *reinterpret_cast<uint32_t*>(smem + off) =
          pack2<T>(dk[dt][2 * hr] * p.scale, dk[dt][2 * hr + 1] * p.scale);
      *reinterpret_cast<uint32_t*>(smem + kTileK + off) =
          pack2<T>(dv[dt][2 * hr] * dv_scale, dv[dt][2 * hr + 1] * dv_scale);
    }
  __syncwarp();
  T* gk = static_cast<T*>(p.dk) + bh_kv * p.kv_len * D;
  T* gv = static_cast<T*>(p.dv) + bh_kv * p.kv_len * D;
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int i = 0; i < 16 * kChunks / 32; ++i) {
    const int idx = i * 32 + lane;
    const int r = wkey + idx / kChunks, c = (idx % kChunks) * 8;
    if (n0 + r < p.kv_len) {
      const uint32_t off = swizzle<D>(r, c);
      const int64_t at = int64_t(n0 + r) * D + c;
      *reinterpret_cast<uint4*>(gk + at) = *reinterpret_cast<const uint4*>(smem + off);
      *reinterpret_cast<uint4*>(gv + at) = *reinterpret_cast<const uint4*>(smem + kTileK + off);
    }
  }
}

// ---- 3. dQ from the accumulator ------------------------------------------------------------
template <class T>
__global__ void flash_attention_backward_convert_kernel(const float4* acc, T* dq, int64_t n4,
                                                        float scale) {
  ANVIL_GRID_STRIDE(i, n4) {
    const float4 a = acc[i];
    uint2 out;
    out.x = pack2<T>(a.x * scale, a.y * scale);
    out.y = pack2<T>(a.z * scale, a.w * scale);
    reinterpret_cast<uint2*>(dq)[i] = out;
  }
}

bool flash_attention_backward_cuda(const AttentionArgs& a, const Tensor& grad_q,
                                   const Tensor& grad_k, const Tensor& grad_v,
                                   const Tensor& grad_out, const Tensor& q, const Tensor& k,
                                   const Tensor& v, const Tensor& out, const Tensor& lse) {
  const int64_t nq = a.batch * a.heads * a.q_len, nk = a.batch * a.kv_heads * a.kv_len;
  const int64_t d = a.head_dim;
  if (!covers(a, {{&q, nq * d},
                  {&k, nk * d},
                  {&v, nk * d},
                  {&out, nq * d},
                  {&grad_out, nq * d},
                  {&grad_q, nq * d},
                  {&grad_k, nk * d},
                  {&grad_v, nk * d},
                  {&lse, nq, true}}))
    return false;
  DeviceGuard guard(q.device().index);
  const bool deterministic = are_deterministic_algorithms_enabled();
  const TensorOptions f32 = TensorOptions(kFloat32).device(q.device());
  // Temporaries from the caching allocator (stream-ordered, so graph capture keeps them).
  Tensor stats = Tensor::empty({std::max<int64_t>(nq, 1), 2}, f32);
  Tensor dq_accum = deterministic ? Tensor() : Tensor::empty({std::max<int64_t>(nq * d, 4)}, f32);
  BwdParams p{};
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.out = out.data_ptr();
  p.dout = grad_out.data_ptr();
  p.lse = lse.data<float>();
  p.stats = reinterpret_cast<float2*>(stats.data<float>());
  p.dq_accum = deterministic ? nullptr : dq_accum.data<float>();
  p.dq = grad_q.data_ptr();
  p.dk = grad_k.data_ptr();
  p.dv = grad_v.data_ptr();
  p.q_len = int(a.q_len);
  p.kv_len = int(a.kv_len);
  p.heads = int(a.heads);
  p.group = int(a.heads / a.kv_heads);
  p.scale = float(a.scale);
  p.scale_log2 = float(a.scale * double(kLog2e));
  p.drop = Dropout::from(a);

  with_instance(q.dtype(), d, a.causal, a.dropout_p > 0,
                [&](auto type, auto dim, auto causal, auto dropout) {
                  using T = typename decltype(type)::type;
                  constexpr int D = decltype(dim)::value;
                  constexpr bool kCausal = decltype(causal)::value;
                  constexpr bool kDropout = decltype(dropout)::value;
                  if (nq > 0) {
                    const int64_t threads = nq * (D / 8);
                    flash_attention_backward_prep_kernel<T, D>
                        <<<unsigned((threads + 255) / 256), 256, 0, current_stream()>>>(p, nq);
                  }
                  using C = BwdConfig<D>;
                  const dim3 grid(unsigned((a.kv_len + C::kBlockN - 1) / C::kBlockN),
                                  unsigned(a.kv_heads), unsigned(a.batch));
                  constexpr int smem = bwd_smem_bytes<D>();
                  if (deterministic) {
                    auto* kernel =
                        &flash_attention_backward_kernel<T, D, kCausal, kDropout, false>;
                    allow_smem(kernel, smem);
                    kernel<<<grid, C::kWarps * 32, smem, current_stream()>>>(p);
                    if (nq > 0) launch_backward_dq<T, D, kCausal, kDropout>(p, a.batch);
                  } else {
                    auto* kernel = &flash_attention_backward_kernel<T, D, kCausal, kDropout, true>;
                    allow_smem(kernel, smem);
                    kernel<<<grid, C::kWarps * 32, smem, current_stream()>>>(p);
                    if (nq > 0)
                      flash_attention_backward_convert_kernel<T>
                          <<<blocks_for(nq * D / 4), kThreads, 0, current_stream()>>>(
                              reinterpret_cast<const float4*>(p.dq_accum), static_cast<T*>(p.dq),
                              nq * D / 4, p.scale);
                  }
                });
  ANVIL_CUDA_CHECK(cudaGetLastError());
  return true;
}

ANVIL_REGISTER_KERNEL(backend::flash_attention_backward_kernels, CUDA,
                      &flash_attention_backward_cuda);

}  // namespace
}  // namespace anvil::cuda::flash
