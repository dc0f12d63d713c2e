// Fused attention forward (FlashAttention-2): a CTA takes kBlockM queries of one head and walks
// the key/value tiles of kBlockN keys, double-buffered in shared memory by cp.async (tile n + 1
// loads while tile n is used). Each warp owns 16 * kMT query rows: S = Q K^T on the tensor
// cores (ldmatrix fragments, float32 accumulators), the online softmax in registers with
// exponents base 2 (scale * log2 e folded into one FMA), P rounded to the input type and fed
// from registers into O += P V. O is normalised once at the end, staged through the warp's rows
// of the Q tile and written with 16-byte stores; lse (natural log) is written beside it. Causal
// CTAs stop at the diagonal tile and mask it; partial tiles are zero-filled and masked.
#include "backend/cuda/flash_attention.cuh"
#include "backend/cuda/stream.h"

namespace anvil::cuda::flash {
namespace {
using backend::AttentionArgs;

struct FwdParams {
  const void *q, *k, *v;
  void* out;
  float* lse;
  int q_len, kv_len;
  int heads, group;  // query heads; query heads per kv head
  float scale_log2;
  Dropout drop;
};

// Tile shapes: FlashAttention-2's choice for mma.sync (4 warps of 32 query rows; 64 keys a tile
// at D = 128, and at D = 64 with dropout, whose Philox draws need registers too).
template <int D, bool kDropout>
struct FwdConfig {
  static constexpr int kBlockM = 128, kBlockN = D == 64 && !kDropout ? 128 : 64, kWarps = 4;
};

template <int D, bool kDropout>
constexpr int fwd_smem_bytes() {
  using C = FwdConfig<D, kDropout>;
  return (C::kBlockM + 4 * C::kBlockN) * D * 2;  // Q, then K and V twice each
}

template <class T, int D, bool kCausal, bool kDropout>
__global__ void __launch_bounds__(FwdConfig<D, kDropout>::kWarps * 32)
    flash_attention_forward_kernel(FwdParams p) {
  using C = FwdConfig<D, kDropout>;
  constexpr int kBlockM = C::kBlockM, kBlockN = C::kBlockN, kThreads = C::kWarps * 32;
  constexpr int kMT = kBlockM / (16 * C::kWarps);  // m-tiles of 16 rows per warp
  constexpr int kNT = kBlockN / 8;                 // n-tiles of S
  constexpr int kDT = D / 8;                       // n-tiles of O
  static_assert(kMT * 16 * C::kWarps == kBlockM && kNT % 2 == 0 && kDT % 2 == 0);

  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t sQ = smem_addr(smem);
  constexpr uint32_t kTileKV = kBlockN * D * 2;
  const uint32_t sKV = sQ + kBlockM * D * 2;  // K[0], K[1], V[0], V[1]

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  // The last query tiles first: under a causal mask they have the most keys to visit.
  const int m0 = int(gridDim.x - 1 - blockIdx.x) * kBlockM;
  const int64_t bh = int64_t(blockIdx.z) * p.heads + blockIdx.y;
  const int64_t bh_kv = int64_t(blockIdx.z) * (p.heads / p.group) + blockIdx.y / p.group;
  const T* q = static_cast<const T*>(p.q) + bh * p.q_len * D;
  const T* k = static_cast<const T*>(p.k) + bh_kv * p.kv_len * D;
  const T* v = static_cast<const T*>(p.v) + bh_kv * p.kv_len * D;
  const Dropout drop = kDropout ? p.drop.resolved() : p.drop;

  int n_blocks = (p.kv_len + kBlockN - 1) / kBlockN;
  if (kCausal) n_blocks = min(n_blocks, (m0 + kBlockM + kBlockN - 1) / kBlockN);

  load_tile<kBlockM, D, kThreads>(sQ, q, m0, p.q_len, tid);
  load_tile<kBlockN, D, kThreads>(sKV, k, 0, p.kv_len, tid);
  load_tile<kBlockN, D, kThreads>(sKV + 2 * kTileKV, v, 0, p.kv_len, tid);
  cp_async_commit();

  const int wrow = warp * kMT * 16;  // the warp's first row in the tile
  const Frag<D> fa = a_frag<D>(lane), fbt = bt_frag<D>(lane), fb = b_frag<D>(lane);
  float o[kMT][kDT][4];
  float row_max[kMT][2], row_sum[kMT][2];  // max in log2 units (score * scale_log2)
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int dt = 0; dt < kDT; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][dt][e] = 0.f;
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      row_max[mt][hr] = -INFINITY;
      row_sum[mt][hr] = 0.f;
    }
  }

  for (int nb = 0; nb < n_blocks; ++nb) {
    const int buf = nb & 1;
    const uint32_t sK = sKV + buf * kTileKV, sV = sKV + (2 + buf) * kTileKV;
    cp_async_wait<0>();
    // Tile nb is in; every warp is done with tile nb - 1, whose buffers take tile nb + 1.
    __syncthreads();
    if (nb + 1 < n_blocks) {
      const int next = (nb + 1) * kBlockN;
      load_tile<kBlockN, D, kThreads>(sKV + (buf ^ 1) * kTileKV, k, next, p.kv_len, tid);
      load_tile<kBlockN, D, kThreads>(sKV + (3 - buf) * kTileKV, v, next, p.kv_len, tid);
      cp_async_commit();
    }

    // Dropout's keep bits for the tile's 64 keys of each of the thread's rows, drawn before S
    // is live (they need registers of their own).
    const int n0 = nb * kBlockN;
    uint64_t keep[kMT][2];
    if constexpr (kDropout) {
      static_assert(kBlockN == 64, "keep64 draws a row's 64 keys");
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
          const int row = m0 + wrow + mt * 16 + g + hr * 8;
          keep[mt][hr] = drop.keep64(uint64_t(bh * p.q_len + row) * uint64_t(p.kv_len) + n0, t);
        }
    }

    // S = Q K^T.
    float s[kMT][kNT][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t a[kMT][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
        ldsm_x4(sQ + fa.at(wrow + mt * 16, kk * 16), a[mt]);
#pragma unroll
      for (int np = 0; np < kNT / 2; ++np) {
        uint32_t b[4];
        ldsm_x4(sK + fbt.at(np * 16, kk * 16), b);
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          mma<T>(s[mt][2 * np], a[mt], b[0], b[1]);
          mma<T>(s[mt][2 * np + 1], a[mt], b[2], b[3]);
        }
      }
    }

    // Keys past the end, and under the causal mask keys after the query, score -inf.
    if (n0 + kBlockN > p.kv_len || (kCausal && n0 + kBlockN - 1 > m0 + wrow)) {
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int row = m0 + wrow + mt * 16 + g + (e >> 1) * 8;
            const int col = n0 + nt * 8 + 2 * t + (e & 1);
            if (col >= p.kv_len || (kCausal && col > row)) s[mt][nt][e] = -INFINITY;
          }
    }

    // Online softmax: P = 2^(s - max) against the new row maxima, and what was accumulated
    // rescaled to them (skipped by the warp while no row maximum of its rows moved).
    float corr[kMT][2];
    bool moved = false;
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        float mx = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
          mx = fmaxf(mx, fmaxf(s[mt][nt][2 * hr], s[mt][nt][2 * hr + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(row_max[mt][hr], mx * p.scale_log2);
        // A row with no visible key yet keeps max -inf; subtract 0 there instead of -inf.
        const float m_use = m_new == -INFINITY ? 0.f : m_new;
        const bool row_moved = m_new != row_max[mt][hr];
        corr[mt][hr] = row_moved ? fast_exp2(row_max[mt][hr] - m_use) : 1.f;
        moved |= row_moved;
        row_max[mt][hr] = m_new;
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
          for (int e = 2 * hr; e < 2 * hr + 2; ++e) {
            s[mt][nt][e] = fast_exp2(fmaf(s[mt][nt][e], p.scale_log2, -m_use));
            sum += s[mt][nt][e];
          }
        row_sum[mt][hr] = row_sum[mt][hr] * corr[mt][hr] + sum;  // this thread's columns only
      }
    if (__any_sync(0xffffffffu, moved)) {
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int dt = 0; dt < kDT; ++dt)
#pragma unroll
          for (int e = 0; e < 4; ++e) o[mt][dt][e] *= corr[mt][e >> 1];
    }

    // Dropout after the normaliser is taken: dropped probabilities become 0 (the 1 / (1 - p)
    // scale is applied to O at the end).
    if constexpr (kDropout) {
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int hr = 0; hr < 2; ++hr)
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
            for (int c = 0; c < 2; ++c)
              if (!((keep[mt][hr] >> (nt * 8 + 2 * t + c)) & 1)) s[mt][nt][2 * hr + c] = 0.f;
    }

    // O += P V, P from the S registers.
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      uint32_t a[kMT][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) c_to_a<T>(s[mt][2 * kk], s[mt][2 * kk + 1], a[mt]);
#pragma unroll
      for (int dp = 0; dp < kDT / 2; ++dp) {
        uint32_t b[4];
        ldsm_x4_trans(sV + fb.at(kk * 16, dp * 16), b);
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          mma<T>(o[mt][2 * dp], a[mt], b[0], b[1]);
          mma<T>(o[mt][2 * dp + 1], a[mt], b[2], b[3]);
        }
      }
    }
  }

  // O /= row sum (times 1 / (1 - p) with dropout); lse = ln(sum) + max.
  float* lse = p.lse + bh * p.q_len;
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      float sum = row_sum[mt][hr];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      // No visible key: O stays 0 and lse is -inf.
      const float inv = sum == 0.f ? 0.f : (kDropout ? drop.scale : 1.f) / sum;
#pragma unroll
      for (int dt = 0; dt < kDT; ++dt) {
        o[mt][dt][2 * hr] *= inv;
        o[mt][dt][2 * hr + 1] *= inv;
      }
      const int row = m0 + wrow + mt * 16 + g + hr * 8;
      if (t == 0 && row < p.q_len)
        lse[row] = sum == 0.f ? -INFINITY : (row_max[mt][hr] + log2f(sum)) * kLn2;
    }

  // Stage O in the warp's own rows of the Q tile (no other warp reads them), then write whole
  // rows with 16-byte stores.
  __syncwarp();
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int dt = 0; dt < kDT; ++dt)
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        const int r = wrow + mt * 16 + g + hr * 8;
        *reinterpret_cast<uint32_t*>(smem + swizzle<D>(r, dt * 8 + 2 * t)) =
            pack2<T>(o[mt][dt][2 * hr], o[mt][dt][2 * hr + 1]);
      }
  __syncwarp();
  T* out = static_cast<T*>(p.out) + bh * p.q_len * D;
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int i = 0; i < kMT * 16 * kChunks / 32; ++i) {
    const int idx = i * 32 + lane;
    const int r = wrow + idx / kChunks, c = (idx % kChunks) * 8;
    if (m0 + r < p.q_len)
      *reinterpret_cast<uint4*>(out + int64_t(m0 + r) * D + c) =
          *reinterpret_cast<const uint4*>(smem + swizzle<D>(r, c));
  }
}

bool flash_attention_cuda(const AttentionArgs& a, const Tensor& out, const Tensor& lse,
                          const Tensor& q, const Tensor& k, const Tensor& v) {
  const int64_t nq = a.batch * a.heads * a.q_len, nk = a.batch * a.kv_heads * a.kv_len;
  if (!covers(a, {{&q, nq * a.head_dim},
                  {&k, nk * a.head_dim},
                  {&v, nk * a.head_dim},
                  {&out, nq * a.head_dim},
                  {&lse, nq, true}}))
    return false;
  if (nq == 0) return true;
  DeviceGuard guard(q.device().index);
  FwdParams p{q.data_ptr(),
              k.data_ptr(),
              v.data_ptr(),
              out.data_ptr(),
              lse.data<float>(),
              int(a.q_len),
              int(a.kv_len),
              int(a.heads),
              int(a.heads / a.kv_heads),
              float(a.scale * double(kLog2e)),
              Dropout::from(a)};
  with_instance(q.dtype(), a.head_dim, a.causal, a.dropout_p > 0,
                [&](auto type, auto dim, auto causal, auto dropout) {
                  using T = typename decltype(type)::type;
                  constexpr int D = decltype(dim)::value;
                  constexpr bool kDropout = decltype(dropout)::value;
                  using C = FwdConfig<D, kDropout>;
                  auto* kernel =
                      &flash_attention_forward_kernel<T, D, decltype(causal)::value, kDropout>;
                  constexpr int smem = fwd_smem_bytes<D, kDropout>();
                  allow_smem(kernel, smem);
                  const dim3 grid(unsigned((a.q_len + C::kBlockM - 1) / C::kBlockM),
                                  unsigned(a.heads), unsigned(a.batch));
                  kernel<<<grid, C::kWarps * 32, smem, current_stream()>>>(p);
                });
  ANVIL_CUDA_CHECK(cudaGetLastError());
  return true;
}

ANVIL_REGISTER_KERNEL(backend::flash_attention_kernels, CUDA, &flash_attention_cuda);

}  // namespace
}  // namespace anvil::cuda::flash
