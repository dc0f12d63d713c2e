// The deterministic dQ of the fused attention backward (flash_attention_backward.cu uses it
// under use_deterministic_algorithms, where the main kernel's dQ atomics are off): a CTA per
// tile of kBlockM queries of one head walks the key/value tiles as the forward does, recomputes
// S = Q K^T and dP = dO V^T with the warps split along the queries, so that each warp holds
// dS = P (dP - D) as the A operand of dQ += dS K, and writes dQ once. Sums run in a fixed
// order: the same inputs give the same bits.
#pragma once
#include "backend/cuda/flash_attention.cuh"
#include "backend/cuda/stream.h"

namespace anvil::cuda::flash {
namespace {

template <int D>
struct DqConfig {
  static constexpr int kBlockM = 64, kBlockN = 64, kWarps = 4;  // 16 query rows per warp
};

template <int D>
constexpr int dq_smem_bytes() {
  using C = DqConfig<D>;
  return (2 * C::kBlockM + 4 * C::kBlockN) * D * 2;  // Q, dO; K and V twice each
}

template <class T, int D, bool kCausal, bool kDropout>
__global__ void __launch_bounds__(DqConfig<D>::kWarps * 32)
    flash_attention_backward_dq_kernel(BwdParams p) {
  using C = DqConfig<D>;
  constexpr int kBlockM = C::kBlockM, kBlockN = C::kBlockN, kThreads = C::kWarps * 32;
  static_assert(kBlockM == 16 * C::kWarps, "a warp owns 16 query rows");
  constexpr int kNT = kBlockN / 8;  // n-tiles of S and dP
  constexpr int kDT = D / 8;        // n-tiles of dQ

  extern __shared__ __align__(128) unsigned char smem[];
  constexpr uint32_t kTileQ = kBlockM * D * 2, kTileKV = kBlockN * D * 2;
  const uint32_t sQ = smem_addr(smem), sdO = sQ + kTileQ;
  const uint32_t sKV = sdO + kTileQ;  // K[0], K[1], V[0], V[1]

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  const int m0 = int(gridDim.x - 1 - blockIdx.x) * kBlockM;
  const int64_t bh = int64_t(blockIdx.z) * p.heads + blockIdx.y;
  const int64_t bh_kv = int64_t(blockIdx.z) * (p.heads / p.group) + blockIdx.y / p.group;
  const T* k = static_cast<const T*>(p.k) + bh_kv * p.kv_len * D;
  const T* v = static_cast<const T*>(p.v) + bh_kv * p.kv_len * D;
  const Dropout drop = kDropout ? p.drop.resolved() : p.drop;

  int n_blocks = (p.kv_len + kBlockN - 1) / kBlockN;
  if (kCausal) n_blocks = min(n_blocks, (m0 + kBlockM + kBlockN - 1) / kBlockN);

  load_tile<kBlockM, D, kThreads>(sQ, static_cast<const T*>(p.q) + bh * p.q_len * D, m0,
                                  p.q_len, tid);
  load_tile<kBlockM, D, kThreads>(sdO, static_cast<const T*>(p.dout) + bh * p.q_len * D, m0,
                                  p.q_len, tid);
  load_tile<kBlockN, D, kThreads>(sKV, k, 0, p.kv_len, tid);
  load_tile<kBlockN, D, kThreads>(sKV + 2 * kTileKV, v, 0, p.kv_len, tid);
  cp_async_commit();

  const int wrow = warp * 16;
  float2 stat[2];  // {lse2, D} of rows g and g + 8
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int i = m0 + wrow + g + hr * 8;
    stat[hr] = i < p.q_len ? p.stats[bh * p.q_len + i] : make_float2(0.f, 0.f);
  }
  const Frag<D> fa = a_frag<D>(lane), fbt = bt_frag<D>(lane), fb = b_frag<D>(lane);
  float dq[kDT][4];
#pragma unroll
  for (int dt = 0; dt < kDT; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) dq[dt][e] = 0.f;

  for (int nb = 0; nb < n_blocks; ++nb) {
    const int buf = nb & 1;
    const uint32_t sK = sKV + buf * kTileKV, sV = sKV + (2 + buf) * kTileKV;
    cp_async_wait<0>();
    __syncthreads();  // tile nb is in; tile nb - 1's buffers are free for tile nb + 1
    if (nb + 1 < n_blocks) {
      const int next = (nb + 1) * kBlockN;
      load_tile<kBlockN, D, kThreads>(sKV + (buf ^ 1) * kTileKV, k, next, p.kv_len, tid);
      load_tile<kBlockN, D, kThreads>(sKV + (3 - buf) * kTileKV, v, next, p.kv_len, tid);
      cp_async_commit();
    }

    // S = Q K^T and dP = dO V^T for the warp's 16 rows.
    float s[kNT][4], dp[kNT][4];
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[nt][e] = dp[nt][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t aq[4], ao[4];
      ldsm_x4(sQ + fa.at(wrow, kk * 16), aq);
      ldsm_x4(sdO + fa.at(wrow, kk * 16), ao);
#pragma unroll
      for (int np = 0; np < kNT / 2; ++np) {
        uint32_t bk[4], bv[4];
        ldsm_x4(sK + fbt.at(np * 16, kk * 16), bk);
        ldsm_x4(sV + fbt.at(np * 16, kk * 16), bv);
        mma<T>(s[2 * np], aq, bk[0], bk[1]);
        mma<T>(s[2 * np + 1], aq, bk[2], bk[3]);
        mma<T>(dp[2 * np], ao, bv[0], bv[1]);
        mma<T>(dp[2 * np + 1], ao, bv[2], bv[3]);
      }
    }

    // dS = P (dP * keep / (1 - p) - D); element e of n-tile nt: row wrow + g + 8 (e / 2),
    // key n0 + 8 nt + 2t + e % 2.
    const int n0 = nb * kBlockN;
    const bool mask = n0 + kBlockN > p.kv_len || (kCausal && n0 + kBlockN - 1 > m0 + wrow);
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int i = m0 + wrow + g + hr * 8;
      const uint64_t base = uint64_t(bh * p.q_len + i) * uint64_t(p.kv_len);  // element (i, 0)
      uint64_t keep = ~uint64_t(0);
      if constexpr (kDropout) {
        static_assert(kBlockN == 64, "keep64 draws a row's 64 keys");
        keep = drop.keep64(base + uint64_t(n0), t);
      }
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) {
        const int j = n0 + nt * 8 + 2 * t;
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int e = 2 * hr + c;
          float pr = fast_exp2(fmaf(s[nt][e], p.scale_log2, -stat[hr].x));
          if (mask && (j + c >= p.kv_len || (kCausal && j + c > i))) pr = 0.f;
          const bool kept = (keep >> (nt * 8 + 2 * t + c)) & 1;
          const float dpv = kDropout ? (kept ? dp[nt][e] * drop.scale : 0.f) : dp[nt][e];
          dp[nt][e] = pr * (dpv - stat[hr].y);
        }
      }
    }

    // dQ += dS K, k = the tile's keys.
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      uint32_t a[4];
      c_to_a<T>(dp[2 * kk], dp[2 * kk + 1], a);
#pragma unroll
      for (int dd = 0; dd < kDT / 2; ++dd) {
        uint32_t b[4];
        ldsm_x4_trans(sK + fb.at(kk * 16, dd * 16), b);
        mma<T>(dq[2 * dd], a, b[0], b[1]);
        mma<T>(dq[2 * dd + 1], a, b[2], b[3]);
      }
    }
  }

  // dQ = scale * sum dS K, staged in the warp's own rows of the Q tile, written in whole rows.
  __syncwarp();
#pragma unroll
  for (int dt = 0; dt < kDT; ++dt)
#pragma unroll
    for (int hr = 0; hr < 2; ++hr)
      *reinterpret_cast<uint32_t*>(smem + swizzle<D>(wrow + g + hr * 8, dt * 8 + 2 * t)) =
          pack2<T>(dq[dt][2 * hr] * p.scale, dq[dt][2 * hr + 1] * p.scale);
  __syncwarp();
  T* out = static_cast<T*>(p.dq) + bh * p.q_len * D;
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int i = 0; i < 16 * kChunks / 32; ++i) {
    const int idx = i * 32 + lane;
    const int r = wrow + idx / kChunks, c = (idx % kChunks) * 8;
    if (m0 + r < p.q_len)
      *reinterpret_cast<uint4*>(out + int64_t(m0 + r) * D + c) =
          *reinterpret_cast<const uint4*>(smem + swizzle<D>(r, c));
  }
}

template <class T, int D, bool kCausal, bool kDropout>
void launch_backward_dq(const BwdParams& p, int64_t batch) {
  using C = DqConfig<D>;
  auto* kernel = &flash_attention_backward_dq_kernel<T, D, kCausal, kDropout>;
  constexpr int smem = dq_smem_bytes<D>();
  allow_smem(kernel, smem);
  const dim3 grid(unsigned((p.q_len + C::kBlockM - 1) / C::kBlockM), unsigned(p.heads),
                  unsigned(batch));
  kernel<<<grid, C::kWarps * 32, smem, current_stream()>>>(p);
}

}  // namespace
}  // namespace anvil::cuda::flash
