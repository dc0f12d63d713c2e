// Vector access for the element-wise kernels' fast path (as llm.c's x128 and MLX's contiguous
// kernels): a thread moves V consecutive elements of a dense operand with 16-byte loads and
// stores (LDG.E.128 / STG.E.128) instead of V scalar ones. V is chosen per kernel from its
// operand types (vec_width); a pointer qualifies when it is aligned to its access (aligned_for).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace anvil::cuda {

// Elements per thread of a kernel over operands of types T...: 16 bytes of the narrowest, so
// that every access is 16 bytes wide, but at most 64 bytes (four accesses) of the widest.
template <class... T>
constexpr int vec_width() {
  constexpr size_t lo = std::min({sizeof(T)...}), hi = std::max({sizeof(T)...});
  return int(std::min(16 / lo, 64 / hi));
}

// The bytes of one access to V elements of T: all of them, or 16 at a time.
template <class T, int V>
constexpr size_t vec_access() {
  return std::min<size_t>(sizeof(T) * V, 16);
}

// Whether `p` is aligned for vector accesses to V elements of T (host side).
template <class T, int V>
inline bool aligned_for(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % vec_access<T, V>() == 0;
}

template <class T, int V>
struct Vec {
  T v[V];
};

// The unsigned type a load or store of N bytes moves.
template <int N> struct Word;
template <> struct Word<1> { using type = uint8_t; };
template <> struct Word<2> { using type = uint16_t; };
template <> struct Word<4> { using type = uint32_t; };
template <> struct Word<8> { using type = uint2; };
template <> struct Word<16> { using type = uint4; };

// V elements from p (aligned as aligned_for says), as sizeof(T) * V / 16 accesses of 16 bytes
// or one narrower access. The words are copied into the elements in registers.
template <int V, class T>
__device__ inline Vec<T, V> load_vec(const T* p) {
  constexpr int access = int(vec_access<T, V>()), words = int(sizeof(T)) * V / access;
  using W = typename Word<access>::type;
  W w[words];
#pragma unroll
  for (int j = 0; j < words; ++j) w[j] = reinterpret_cast<const W*>(p)[j];
  Vec<T, V> r;
  memcpy(static_cast<void*>(&r), w, sizeof(r));
  return r;
}

template <int V, class T>
__device__ inline void store_vec(T* p, const Vec<T, V>& r) {
  constexpr int access = int(vec_access<T, V>()), words = int(sizeof(T)) * V / access;
  using W = typename Word<access>::type;
  W w[words];
  memcpy(w, static_cast<const void*>(&r), sizeof(r));
#pragma unroll
  for (int j = 0; j < words; ++j) reinterpret_cast<W*>(p)[j] = w[j];
}

// V elements from p + i, or V copies of *p for a broadcast scalar operand.
template <int V, class T>
__device__ inline Vec<T, V> load_or_splat(const T* p, int64_t i, bool splat) {
  if (!splat) return load_vec<V>(p + i);
  Vec<T, V> r;
  const T s = *p;
#pragma unroll
  for (int k = 0; k < V; ++k) r.v[k] = s;
  return r;
}

}  // namespace anvil::cuda
