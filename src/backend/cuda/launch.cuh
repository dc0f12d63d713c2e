// Shared pieces of the CUDA kernels: device types for anvil's storage types, conversions to the
// compute type, strided operand geometry, launch sizes and an element-wise map over operands
// of one shape, with a vector walk (vec.cuh) for dense operands. Every launch goes to
// current_stream() (stream.h).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <array>
#include <cstdint>
#include <type_traits>

#include "anvil/core/tensor.h"
#include "backend/cuda/runtime.h"
#include "backend/cuda/scalar_elementwise.h"
#include "backend/cuda/stream.h"
#include "backend/cuda/vec.cuh"

namespace anvil::cuda {

constexpr int kMaxDims = 8;
constexpr int kThreads = 256;  // block size of the element-wise kernels

// Blocks for a grid-stride loop over n items (at most 65535: every loop strides by the grid).
inline int blocks_for(int64_t n, int threads = kThreads) {
  return int(std::max<int64_t>(1, std::min<int64_t>((n + threads - 1) / threads, 65535)));
}

// Geometry of one strided operand, passed by value to kernels.
struct Geometry {
  int ndim;
  int64_t sizes[kMaxDims];
  int64_t strides[kMaxDims];  // elements
};

inline Geometry geometry_of(const Tensor& t) {
  ANVIL_CHECK(t.dim() <= kMaxDims, ShapeError, "CUDA kernels support up to ", kMaxDims,
              " dims, got shape ", to_string(t.shape()));
  Geometry g{};
  g.ndim = int(t.dim());
  for (int i = 0; i < g.ndim; ++i) {
    g.sizes[i] = t.shape()[i];
    g.strides[i] = t.strides()[i];
  }
  return g;
}

// Element offset of the element at row-major position `linear`.
__device__ inline int64_t offset_of(const Geometry& g, int64_t linear) {
  int64_t off = 0;
  for (int d = g.ndim - 1; d >= 0; --d) {
    off += (linear % g.sizes[d]) * g.strides[d];
    linear /= g.sizes[d];
  }
  return off;
}

// Device types for the storage types (bit-compatible with anvil's float16 and bfloat16).
template <class T> struct DevType { using type = T; };
template <> struct DevType<float16> { using type = __half; };
template <> struct DevType<bfloat16> { using type = __nv_bfloat16; };
template <class T> using dev_t = typename DevType<T>::type;

// The type kernels compute in: float for the 16-bit floats, the type itself otherwise (as the
// CPU kernels do).
template <class T> struct ComputeType { using type = T; };
template <> struct ComputeType<__half> { using type = float; };
template <> struct ComputeType<__nv_bfloat16> { using type = float; };
template <class T> using compute_t = typename ComputeType<T>::type;

template <class T> inline constexpr bool is_half_v =
    std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;
template <class T> inline constexpr bool is_float_v = std::is_floating_point_v<T> || is_half_v<T>;

// Storage -> compute type.
template <class T> __device__ inline compute_t<T> up(T v) {
  if constexpr (std::is_same_v<T, __half>) return __half2float(v);
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(v);
  else return v;
}
// Any arithmetic value -> storage type. Doubles reach the 16-bit types through float, as
// anvil's host conversions do.
template <class T, class C> __device__ inline T down(C v) {
  if constexpr (std::is_same_v<T, __half>) return __float2half(float(v));
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16(float(v));
  else return T(v);
}

template <class T> __device__ inline double to_double(T v) { return double(up(v)); }
template <class T> __device__ inline T from_double(double v) {
  if constexpr (std::is_same_v<T, bool>) return v != 0;
  else return down<T>(v);
}

// N operands of one shape (inputs broadcast as stride-0 views), with size-1 dims dropped and
// adjacent dims merged where every operand steps over them evenly.
template <int N>
struct Pack {
  int ndim = 0;
  bool contiguous = true;  // every operand dense and row-major: index i is offset i
  int64_t sizes[kMaxDims] = {};
  int64_t strides[kMaxDims][N] = {};  // elements
};

template <int N>
Pack<N> make_pack(const std::array<const Tensor*, N>& ts) {
  Pack<N> p;
  const Shape& shape = ts[0]->shape();
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    int64_t st[N];
    for (int k = 0; k < N; ++k) st[k] = ts[k]->strides()[d];
    if (p.ndim > 0) {
      bool merge = true;
      for (int k = 0; k < N; ++k)
        if (p.strides[p.ndim - 1][k] != st[k] * shape[d]) merge = false;
      if (merge) {
        p.sizes[p.ndim - 1] *= shape[d];
        for (int k = 0; k < N; ++k) p.strides[p.ndim - 1][k] = st[k];
        continue;
      }
    }
    ANVIL_CHECK(p.ndim < kMaxDims, ShapeError, "CUDA element-wise kernels support up to ",
                kMaxDims, " non-mergeable dims, got shape ", to_string(shape));
    p.sizes[p.ndim] = shape[d];
    for (int k = 0; k < N; ++k) p.strides[p.ndim][k] = st[k];
    ++p.ndim;
  }
  for (int k = 0; k < N; ++k)
    if (p.ndim > 1 || (p.ndim == 1 && p.strides[0][k] != 1)) p.contiguous = false;
  return p;
}

template <int N>
__device__ inline void offsets_of(const Pack<N>& p, int64_t linear, int64_t (&off)[N]) {
  for (int k = 0; k < N; ++k) off[k] = 0;
  for (int d = p.ndim - 1; d >= 0; --d) {
    const int64_t c = linear % p.sizes[d];
    linear /= p.sizes[d];
    for (int k = 0; k < N; ++k) off[k] += c * p.strides[d][k];
  }
}

#define ANVIL_GRID_STRIDE(i, n)                                                  \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)

// How an element-wise kernel walks its operands, chosen once per launch on the host.
enum class Walk : uint8_t {
  Vector,   // out dense, each input dense or a broadcast scalar, all aligned: V per thread
  Dense,    // every operand dense: element i at offset i of each
  Rows,     // strided, but the last dim dense in every operand and whole aligned vectors
            // (a slice of a wider tensor, a row broadcast): V per thread, offsets per row
  Strided,  // offsets from the pack
};

struct WalkPlan {
  Walk walk;
  unsigned splat;       // Vector: bit k set where input k is a broadcast scalar (read at offset 0)
  int64_t items;        // what the grid strides over: n elements, or n / V (rounded up) vectors
  int64_t per_row = 0;  // Rows: vectors in a row of the last dim
};

// Rows: the offsets in each operand of vector c's first element.
template <int V, int N>
__device__ inline void row_vector_offsets(const Pack<N>& p, int64_t c, int64_t per_row,
                                          int64_t (&off)[N]) {
  int64_t row = c / per_row;
  const int64_t col = (c - row * per_row) * V;
  for (int k = 0; k < N; ++k) off[k] = col;
  for (int d = p.ndim - 2; d >= 0; --d) {
    const int64_t q = row / p.sizes[d], r = row - q * p.sizes[d];
    for (int k = 0; k < N; ++k) off[k] += r * p.strides[d][k];
    row = q;
  }
}

// The walk for the operands of types T... (out first) in pack p of n elements: Vector where
// the pack is a single run, out and the inputs of stride 1 are aligned for V elements of
// their type and the others have stride 0; Rows where it has several dims, the last of
// stride 1 in every operand and a whole number of vectors long, every other stride a whole
// number of vectors and every operand aligned; unless the benchmarking switch
// (scalar_elementwise.h) holds the kernels to the scalar walks they had before.
template <int V, class... T>
WalkPlan plan_walk(const Pack<int(sizeof...(T))>& p, int64_t n,
                   const std::array<const void*, sizeof...(T)>& ptrs) {
  constexpr int N = int(sizeof...(T));
  const WalkPlan scalar{p.contiguous ? Walk::Dense : Walk::Strided, 0, n};
  if (scalar_elementwise()) return scalar;
  const size_t access[N] = {vec_access<T, V>()...};
  if (p.ndim > 1) {
    const int last = p.ndim - 1;
    if (p.sizes[last] % V != 0) return scalar;
    for (int k = 0; k < N; ++k) {
      if (p.strides[last][k] != 1 || reinterpret_cast<uintptr_t>(ptrs[k]) % access[k] != 0)
        return scalar;
      for (int d = 0; d < last; ++d)
        if (p.strides[d][k] % V != 0) return scalar;
    }
    return {Walk::Rows, 0, n / V, p.sizes[last] / V};
  }
  unsigned splat = 0;
  for (int k = 0; k < N; ++k) {
    const int64_t stride = p.ndim == 0 ? 1 : p.strides[0][k];  // ndim 0: a single element
    if (k > 0 && stride == 0) splat |= 1u << (k - 1);
    else if (stride != 1 || reinterpret_cast<uintptr_t>(ptrs[k]) % access[k] != 0) return scalar;
  }
  return {Walk::Vector, splat, (n + V - 1) / V};
}

// out[i] = f(a[i]) and friends: f maps storage values to the storage value of out. Every walk
// calls f once per element on the same values, so they give the same bits; f is a functor
// type fixed at compile time (one kernel per op), never a switch on the op per element.
template <class O, class A, class F>
__global__ void map1_kernel(WalkPlan w, Pack<2> p, O* out, const A* a, int64_t n, F f) {
  if (w.walk == Walk::Vector) {
    constexpr int V = vec_width<O, A>();
    const bool sa = w.splat & 1;
    ANVIL_GRID_STRIDE(c, w.items) {
      const int64_t i = c * V;
      if (i + V <= n) {
        const Vec<A, V> x = load_or_splat<V>(a, i, sa);
        Vec<O, V> r;
#pragma unroll
        for (int k = 0; k < V; ++k) r.v[k] = f(x.v[k]);
        store_vec<V>(out + i, r);
      } else {  // the last, partial vector
#pragma unroll 1
        for (int64_t j = i; j < n; ++j) out[j] = f(a[sa ? 0 : j]);
      }
    }
  } else if (w.walk == Walk::Dense) {
    ANVIL_GRID_STRIDE(i, n) out[i] = f(a[i]);
  } else if (w.walk == Walk::Rows) {
    constexpr int V = vec_width<O, A>();
    ANVIL_GRID_STRIDE(c, w.items) {
      int64_t off[2];
      row_vector_offsets<V>(p, c, w.per_row, off);
      const Vec<A, V> x = load_vec<V>(a + off[1]);
      Vec<O, V> r;
#pragma unroll
      for (int k = 0; k < V; ++k) r.v[k] = f(x.v[k]);
      store_vec<V>(out + off[0], r);
    }
  } else {
    ANVIL_GRID_STRIDE(i, n) {
      int64_t off[2];
      offsets_of(p, i, off);
      out[off[0]] = f(a[off[1]]);
    }
  }
}

template <class O, class A, class B, class F>
__global__ void map2_kernel(WalkPlan w, Pack<3> p, O* out, const A* a, const B* b, int64_t n,
                            F f) {
  if (w.walk == Walk::Vector) {
    constexpr int V = vec_width<O, A, B>();
    const bool sa = w.splat & 1, sb = w.splat & 2;
    ANVIL_GRID_STRIDE(c, w.items) {
      const int64_t i = c * V;
      if (i + V <= n) {
        const Vec<A, V> x = load_or_splat<V>(a, i, sa);
        const Vec<B, V> y = load_or_splat<V>(b, i, sb);
        Vec<O, V> r;
#pragma unroll
        for (int k = 0; k < V; ++k) r.v[k] = f(x.v[k], y.v[k]);
        store_vec<V>(out + i, r);
      } else {  // the last, partial vector
#pragma unroll 1
        for (int64_t j = i; j < n; ++j) out[j] = f(a[sa ? 0 : j], b[sb ? 0 : j]);
      }
    }
  } else if (w.walk == Walk::Dense) {
    ANVIL_GRID_STRIDE(i, n) out[i] = f(a[i], b[i]);
  } else if (w.walk == Walk::Rows) {
    constexpr int V = vec_width<O, A, B>();
    ANVIL_GRID_STRIDE(c, w.items) {
      int64_t off[3];
      row_vector_offsets<V>(p, c, w.per_row, off);
      const Vec<A, V> x = load_vec<V>(a + off[1]);
      const Vec<B, V> y = load_vec<V>(b + off[2]);
      Vec<O, V> r;
#pragma unroll
      for (int k = 0; k < V; ++k) r.v[k] = f(x.v[k], y.v[k]);
      store_vec<V>(out + off[0], r);
    }
  } else {
    ANVIL_GRID_STRIDE(i, n) {
      int64_t off[3];
      offsets_of(p, i, off);
      out[off[0]] = f(a[off[1]], b[off[2]]);
    }
  }
}

template <class O, class A, class B, class C, class F>
__global__ void map3_kernel(WalkPlan w, Pack<4> p, O* out, const A* a, const B* b, const C* c,
                            int64_t n, F f) {
  if (w.walk == Walk::Vector) {
    constexpr int V = vec_width<O, A, B, C>();
    const bool sa = w.splat & 1, sb = w.splat & 2, sc = w.splat & 4;
    ANVIL_GRID_STRIDE(v, w.items) {
      const int64_t i = v * V;
      if (i + V <= n) {
        const Vec<A, V> x = load_or_splat<V>(a, i, sa);
        const Vec<B, V> y = load_or_splat<V>(b, i, sb);
        const Vec<C, V> z = load_or_splat<V>(c, i, sc);
        Vec<O, V> r;
#pragma unroll
        for (int k = 0; k < V; ++k) r.v[k] = f(x.v[k], y.v[k], z.v[k]);
        store_vec<V>(out + i, r);
      } else {  // the last, partial vector
#pragma unroll 1
        for (int64_t j = i; j < n; ++j)
          out[j] = f(a[sa ? 0 : j], b[sb ? 0 : j], c[sc ? 0 : j]);
      }
    }
  } else if (w.walk == Walk::Dense) {
    ANVIL_GRID_STRIDE(i, n) out[i] = f(a[i], b[i], c[i]);
  } else if (w.walk == Walk::Rows) {
    constexpr int V = vec_width<O, A, B, C>();
    ANVIL_GRID_STRIDE(v, w.items) {
      int64_t off[4];
      row_vector_offsets<V>(p, v, w.per_row, off);
      const Vec<A, V> x = load_vec<V>(a + off[1]);
      const Vec<B, V> y = load_vec<V>(b + off[2]);
      const Vec<C, V> z = load_vec<V>(c + off[3]);
      Vec<O, V> r;
#pragma unroll
      for (int k = 0; k < V; ++k) r.v[k] = f(x.v[k], y.v[k], z.v[k]);
      store_vec<V>(out + off[0], r);
    }
  } else {
    ANVIL_GRID_STRIDE(i, n) {
      int64_t off[4];
      offsets_of(p, i, off);
      out[off[0]] = f(a[off[1]], b[off[2]], c[off[3]]);
    }
  }
}

// Host launchers (the caller holds a DeviceGuard). O, A, ... are device types.
template <class O, class A, class F>
void map1(const Tensor& out, const Tensor& a, F f) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const Pack<2> p = make_pack<2>({&out, &a});
  const WalkPlan w = plan_walk<vec_width<O, A>(), O, A>(p, n, {out.data_ptr(), a.data_ptr()});
  map1_kernel<O, A, F><<<blocks_for(w.items), kThreads, 0, current_stream()>>>(
      w, p, static_cast<O*>(out.data_ptr()), static_cast<const A*>(a.data_ptr()), n, f);
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

template <class O, class A, class B, class F>
void map2(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const Pack<3> p = make_pack<3>({&out, &a, &b});
  const WalkPlan w = plan_walk<vec_width<O, A, B>(), O, A, B>(
      p, n, {out.data_ptr(), a.data_ptr(), b.data_ptr()});
  map2_kernel<O, A, B, F><<<blocks_for(w.items), kThreads, 0, current_stream()>>>(
      w, p, static_cast<O*>(out.data_ptr()), static_cast<const A*>(a.data_ptr()),
      static_cast<const B*>(b.data_ptr()), n, f);
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

template <class O, class A, class B, class C, class F>
void map3(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& c, F f) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const Pack<4> p = make_pack<4>({&out, &a, &b, &c});
  const WalkPlan w = plan_walk<vec_width<O, A, B, C>(), O, A, B, C>(
      p, n, {out.data_ptr(), a.data_ptr(), b.data_ptr(), c.data_ptr()});
  map3_kernel<O, A, B, C, F><<<blocks_for(w.items), kThreads, 0, current_stream()>>>(
      w, p, static_cast<O*>(out.data_ptr()), static_cast<const A*>(a.data_ptr()),
      static_cast<const B*>(b.data_ptr()), static_cast<const C*>(c.data_ptr()), n, f);
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

}  // namespace anvil::cuda
