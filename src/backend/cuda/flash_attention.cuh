// Pieces shared by the flash-attention kernels (flash_attention_forward.cu,
// flash_attention_backward.cu): swizzled shared-memory tiles filled by cp.async, ldmatrix
// fragment loads, the m16n8k16 tensor-core product, and the dropout keep bits drawn from
// Philox exactly as dropout() draws them.
//
// Fragments of mma.sync.m16n8k16 (bf16/fp16 in, float32 accumulate) for lane l, g = l / 4,
// t = l % 4 (PTX ISA, "Matrix Fragments for mma.m16n8k16"):
//   A (16 x 16, row-major): a[0] = (g, 2t..2t+1), a[1] = (g+8, 2t..), a[2] = (g, 2t+8..),
//                           a[3] = (g+8, 2t+8..), two 16-bit values per register, low half first.
//   B (16 x 8, k x n):      b[0] = (k 2t..2t+1, n g), b[1] = (k 2t+8.., n g).
//   C (16 x 8, float):      c[0..1] = (g, 2t..2t+1), c[2..3] = (g+8, 2t..2t+1).
// So the C fragments of two neighbouring n-tiles, rounded to 16 bits, are the A fragment of one
// k-step of the next product (the probabilities P of S = Q K^T feed O += P V from registers).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "backend/attention_kernels.h"
#include "backend/cuda/philox.cuh"
#include "backend/cuda/runtime.h"

namespace anvil::cuda::flash {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// ---- shared-memory tiles ---------------------------------------------------------------
// A tile of rows of kCols 16-bit elements, stored row after row in 16-byte chunks whose index
// is XOR-ed with row % 8. The 8 rows an ldmatrix 8x8 matrix reads (consecutive rows, one
// logical chunk) then sit in 8 different chunk columns: all 32 banks, no conflict; so do the 8
// rows of 4-byte accumulator stores and the 16-byte cp.async writes of one row.
template <int kCols>
__device__ inline uint32_t swizzle(int row, int col) {
  static_assert(kCols % 64 == 0, "a swizzled row holds a multiple of 8 chunks of 16 bytes");
  const int chunk = (col >> 3) ^ (row & 7);
  return uint32_t((row * kCols + chunk * 8 + (col & 7)) * 2);
}

__device__ inline uint32_t smem_addr(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, asynchronously; zeros instead when !valid (src is then not read,
// but must still be a valid address).
__device__ inline void cp_async16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 16 : 0));
}
// 8 bytes global -> shared (zeros when !valid).
__device__ inline void cp_async8(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 8 : 0));
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Rows [row0, row0 + kRows) of a row-major [rows, kCols] matrix into a swizzled tile, rows at
// or past `rows` as zeros (so that masked scores never meet NaN or Inf garbage in a product).
// Thread tid copies chunk tid % kChunks of rows tid / kChunks + i * kPass: one base address and
// compile-time offsets (the swizzle repeats every 8 rows and kPass is a multiple of 8).
template <int kRows, int kCols, int kThreads, class T>
__device__ inline void load_tile(uint32_t tile, const T* src, int64_t row0, int64_t rows,
                                 int tid) {
  constexpr int kChunks = kCols / 8, kPass = kThreads / kChunks;
  static_assert(kThreads % kChunks == 0 && kPass % 8 == 0 && kRows % kPass == 0);
  const int r = tid / kChunks, c = (tid % kChunks) * 8;
  const T* from = src + (row0 + r) * kCols + c;
  const uint32_t to = tile + swizzle<kCols>(r, c);
  const int64_t left = rows - row0 - r;  // this thread's rows that exist
#pragma unroll
  for (int i = 0; i < kRows / kPass; ++i) {
    const bool valid = i * kPass < left;
    cp_async16(to + i * kPass * kCols * 2, valid ? from + i * kPass * kCols : src, valid);
  }
}

// ---- fragments and the product -----------------------------------------------------------
__device__ inline void ldsm_x4(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ inline void ldsm_x4_trans(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// Lane addresses of ldmatrix.x4 in a swizzled tile of kCols columns, for the three fragment
// shapes the kernels load (r0, c0: the top-left element of the 16 x 16 block):
//  a_frag:  A of rows r0.., k = columns c0..: registers a[0..3].
//  bt_frag: B of k = columns c0..c0+15, n = rows r0..r0+15 (the tile holds B^T, as K holds
//           the B of Q K^T): {b0, b1} of n-tile r0..r0+7, then of r0+8..r0+15.
//           With .trans the same addresses give the A of rows = columns c0.., k = rows r0..
//           (the tile holds A^T, as the backward's dS^T tile holds the A of dQ = dS K).
//  b_frag (with .trans): B of k = rows r0..r0+15, n = columns c0..c0+15 (the tile holds B, as
//           V holds the B of P V): {b0, b1} of n-tile c0..c0+7, then of c0+8..c0+15.
// A lane reads row r0 + lr, column c0 + lc (lr, lc fixed by the lane and the shape). With r0 a
// multiple of 8 and c0 of 16 the swizzled byte offset splits into a per-lane part and the
// block's: r0 * row bytes + (lane part ^ 2 c0), so unrolled loops pay one XOR per load.
template <int kCols>
struct Frag {
  uint32_t lane_part;
  __device__ Frag(int lr, int lc)
      : lane_part(uint32_t(lr * kCols * 2 + (((lc >> 3) ^ (lr & 7)) << 4))) {}
  __device__ uint32_t at(int r0, int c0) const {
    return uint32_t(r0 * kCols * 2) + (lane_part ^ uint32_t(c0 * 2));
  }
};
template <int kCols>
__device__ inline Frag<kCols> a_frag(int lane) {
  return Frag<kCols>(lane & 15, (lane >> 4) * 8);
}
template <int kCols>
__device__ inline Frag<kCols> bt_frag(int lane) {
  return Frag<kCols>((lane & 7) + ((lane >> 4) << 3), ((lane >> 3) & 1) * 8);
}
template <int kCols>
__device__ inline Frag<kCols> b_frag(int lane) {
  return Frag<kCols>((lane & 7) + ((lane >> 3) & 1) * 8, (lane >> 4) * 8);
}

// c += a b on the tensor cores, T = __nv_bfloat16 or __half.
template <class T>
__device__ inline void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Two floats rounded to T, lo in the low half.
template <class T>
__device__ inline uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  } else {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
}

// The A fragment of k-step kk from the float C fragments of n-tiles 2kk and 2kk + 1.
template <class T>
__device__ inline void c_to_a(const float (&c0)[4], const float (&c1)[4], uint32_t (&a)[4]) {
  a[0] = pack2<T>(c0[0], c0[1]);
  a[1] = pack2<T>(c0[2], c0[3]);
  a[2] = pack2<T>(c1[0], c1[1]);
  a[3] = pack2<T>(c1[2], c1[3]);
}

__device__ inline float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// ---- dropout ---------------------------------------------------------------------------
// Element n of the [B, H, Tq, Tk] probabilities is kept when the float32 uniform of Philox
// block first + n / 4, lane n % 4, is below keep_below: dropout()'s draw (dropout.cu). The
// lanes that hold neighbouring elements draw each block once between them and swap bits.
struct Dropout {
  uint64_t seed = 0, first = 0;
  float keep_below = 1;
  float scale = 1;  // 1 / (1 - p)
  const uint64_t* state = nullptr;  // {seed, base} inside a CUDA graph; first is then relative

  static Dropout from(const backend::AttentionArgs& a) {
    Dropout d;
    d.seed = a.seed;
    d.first = a.first_block;
    d.keep_below = float(1.0 - double(a.dropout_p));
    d.scale = float(1.0 / (1.0 - double(a.dropout_p)));
    d.state = a.device_state;
    return d;
  }
  // The seed and first block this launch draws from (read from the device during a replay).
  __device__ Dropout resolved() const {
    Dropout d = *this;
    if (state) {
      d.seed = state[0];
      d.first = state[1] + first;
    }
    return d;
  }
  // Keep bits of one Philox block's 4 elements, lane l in bit l.
  __device__ uint32_t nibble(uint64_t block) const {
    const PhiloxBlock b = philox4x32(first + block, 0, seed);
    uint32_t m = 0;
#pragma unroll
    for (int l = 0; l < 4; ++l) m |= uint32_t(uint32_to_uniform_float(b.x[l]) < keep_below) << l;
    return m;
  }
  // Keep bits of the 64 elements n0 .. n0 + 63, bit c for element n0 + c, drawn by the 4 lanes
  // of a quad together (t = lane % 4; all four pass the same n0): the 16 or 17 Philox blocks
  // the elements span, a quarter each, then OR-ed across the quad.
  __device__ uint64_t keep64(uint64_t n0, int t) const {
    const int o = int(n0 % 4);  // element n0 is lane o of its block
    uint64_t bits = 0;
#pragma unroll
    for (int i = 0; i < 5; ++i) {
      const int j = t + 4 * i;  // block j holds elements 4j - o .. 4j - o + 3
      if (i < 4 || (j == 16 && o > 0)) {
        const uint64_t nib = nibble(n0 / 4 + uint64_t(j));
        const int shift = 4 * j - o;
        bits |= shift >= 0 ? nib << shift : nib >> -shift;
      }
    }
    uint32_t lo = uint32_t(bits), hi = uint32_t(bits >> 32);
#pragma unroll
    for (int x = 1; x <= 2; x *= 2) {
      lo |= __shfl_xor_sync(0xffffffffu, lo, x);
      hi |= __shfl_xor_sync(0xffffffffu, hi, x);
    }
    return (uint64_t(hi) << 32) | lo;
  }
  // Keep bits of the 16 elements n0 .. n0 + 15, drawn by the 8 lanes of one lane % 4 together
  // (g = lane / 4; all eight pass the same n0): 4 or 5 blocks, one per lane, OR-ed.
  __device__ uint32_t keep16(uint64_t n0, int g) const {
    const int o = int(n0 % 4);
    uint32_t bits = 0;
    if (g < 4 || (g == 4 && o > 0)) {
      const uint32_t nib = nibble(n0 / 4 + uint64_t(g));
      const int shift = 4 * g - o;
      bits = (shift >= 0 ? nib << shift : nib >> -shift) & 0xffffu;
    }
#pragma unroll
    for (int x = 4; x <= 16; x *= 2) bits |= __shfl_xor_sync(0xffffffffu, bits, x);
    return bits;
  }
};

// Parameters of the backward kernels (flash_attention_backward.cu and _dq.cuh).
struct BwdParams {
  const void *q, *k, *v, *out, *dout;
  const float* lse;
  float2* stats;    // per query row {lse * log2 e (+inf where lse is -inf), D = rowsum(dO O)}
  float* dq_accum;  // float32 dQ / scale, added by atomics; null in deterministic mode
  void *dq, *dk, *dv;
  int q_len, kv_len;
  int heads, group;  // query heads; query heads per kv head
  float scale, scale_log2;
  Dropout drop;
};

// ---- host side -------------------------------------------------------------------------

// Whether the kernels cover a case: 16-bit floats, head dim 64 or 128, a positive finite
// scale, dropout below 1, at least one key, and operands (`dtype` ones first, then float32
// ones) contiguous, 16-byte aligned and of the sizes the arguments give.
constexpr int64_t kMaxLen = (int64_t(1) << 31) - (int64_t(1) << 16);
struct Operand {
  const Tensor* t;
  int64_t numel;
  bool float32 = false;
};
inline bool covers(const backend::AttentionArgs& a, std::initializer_list<Operand> ops) {
  const DType dt = ops.begin()->t->dtype();
  if (dt != kBFloat16 && dt != kFloat16) return false;
  if (a.head_dim != 64 && a.head_dim != 128) return false;
  if (a.batch < 1 || a.heads < 1 || a.kv_heads < 1 || a.heads % a.kv_heads != 0) return false;
  if (a.batch > 65535 || a.heads > 65535) return false;  // grid z and y
  // Row and column indices stay int32 in the kernels (with a tile of headroom).
  if (a.q_len < 0 || a.kv_len < 1 || a.q_len > kMaxLen || a.kv_len > kMaxLen) return false;
  if (!(a.scale > 0) || !std::isfinite(a.scale)) return false;
  if (!(a.dropout_p >= 0 && a.dropout_p < 1)) return false;
  for (const Operand& o : ops) {
    const Tensor& t = *o.t;
    if (t.dtype() != (o.float32 ? kFloat32 : dt) || !t.is_contiguous() || t.numel() != o.numel)
      return false;
    if ((reinterpret_cast<uintptr_t>(t.data_ptr()) & 15) != 0) return false;
  }
  return true;
}

template <bool B> using Bool = std::integral_constant<bool, B>;
template <int N> using Int = std::integral_constant<int, N>;

// Calls f(type_identity<T>, Int<D>, Bool<causal>, Bool<dropout>) for the case's instantiation.
template <class F>
void with_instance(DType dt, int64_t head_dim, bool causal, bool dropout, F&& f) {
#ifdef ANVIL_FLASH_ONE_INSTANCE  // kernel development: compile one instance only
#ifndef ANVIL_FLASH_DROPOUT
#define ANVIL_FLASH_DROPOUT false
#endif
  f(std::type_identity<__nv_bfloat16>{}, Int<ANVIL_FLASH_ONE_INSTANCE>{}, Bool<false>{}, Bool<ANVIL_FLASH_DROPOUT>{});
#else
  auto by_dropout = [&](auto t, auto d, auto c) {
    if (dropout) f(t, d, c, Bool<true>{});
    else f(t, d, c, Bool<false>{});
  };
  auto by_causal = [&](auto t, auto d) {
    if (causal) by_dropout(t, d, Bool<true>{});
    else by_dropout(t, d, Bool<false>{});
  };
  auto by_dim = [&](auto t) {
    if (head_dim == 64) by_causal(t, Int<64>{});
    else by_causal(t, Int<128>{});
  };
  if (dt == kBFloat16) by_dim(std::type_identity<__nv_bfloat16>{});
  else by_dim(std::type_identity<__half>{});
#endif
}

// Raises a kernel's dynamic shared-memory limit to `bytes` (needed above 48 KB).
template <class K>
void allow_smem(K* kernel, int bytes) {
  ANVIL_CUDA_CHECK(cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel),
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
}

}  // namespace anvil::cuda::flash
