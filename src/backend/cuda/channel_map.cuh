// Element-wise maps over contiguous [N, C, S] tensors (S = the product of the dims after C)
// whose function depends on the channel: out[i] = f(c, a[i]) or f(c, a[i], b[i]) with
// c = (i / S) % C. Each thread takes 16 bytes of consecutive values when every pointer is
// aligned for it, and steps (s, c) along them, so the division is paid once per vector rather
// than once per value; index arithmetic is 32-bit when the tensor allows.
#pragma once
#include "backend/cuda/launch.cuh"
#include "backend/cuda/vec.cuh"

namespace anvil::cuda {

template <int V, bool kBinary, class Index, class T, class F>
__global__ void channel_map_kernel(Index total, Index C, Index S, F f, T* out, const T* a,
                                   const T* b) {
  const Index stride = Index(gridDim.x) * blockDim.x * V;
  for (Index i = (Index(blockIdx.x) * blockDim.x + threadIdx.x) * V; i < total; i += stride) {
    const Index q = i / S;
    Index s = i - q * S, c = q % C;
    auto next = [&] {
      if (++s == S) {
        s = 0;
        if (++c == C) c = 0;
      }
    };
    auto apply = [&](T x, T y) {
      if constexpr (kBinary) return f(c, x, y);
      else return f(c, x);
    };
    if (V > 1 && i + V <= total) {
      const Vec<T, V> va = load_vec<V>(a + i);
      const Vec<T, V> vb = kBinary ? load_vec<V>(b + i) : va;
      Vec<T, V> vo;
#pragma unroll
      for (int k = 0; k < V; ++k) {
        vo.v[k] = apply(va.v[k], vb.v[k]);
        next();
      }
      store_vec<V>(out + i, vo);
    } else {
      for (Index k = i; k < total && k < i + V; ++k) {
        out[k] = apply(a[k], kBinary ? b[k] : a[k]);
        next();
      }
    }
  }
}

template <bool kBinary, class T, class F>
void launch_channel_map(T* out, const T* a, const T* b, int64_t total, int64_t C, int64_t S,
                        F f) {
  if (total == 0) return;
  constexpr int kWide = sizeof(T) >= 16 ? 1 : int(16 / sizeof(T));
  auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const bool wide = aligned(out) && aligned(a) && (!kBinary || aligned(b));
  // 32-bit indices while i + stride cannot wrap (the stride is at most 65535 * 256 * V).
  const bool narrow = total < (int64_t(1) << 31);
  auto launch = [&](auto vec, auto index) {
    constexpr int V = decltype(vec)::value;
    using Index = decltype(index);
    channel_map_kernel<V, kBinary, Index, T, F>
        <<<blocks_for((total + V - 1) / V), kThreads, 0, current_stream()>>>(
            Index(total), Index(C), Index(S), f, out, a, b);
  };
  using Wide = std::integral_constant<int, kWide>;
  using One = std::integral_constant<int, 1>;
  if (wide && narrow) launch(Wide{}, uint32_t{});
  else if (wide) launch(Wide{}, int64_t{});
  else if (narrow) launch(One{}, uint32_t{});
  else launch(One{}, int64_t{});
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

// out = f(c, a) over `total` elements of [*, C, S]; out may be a. T is the device type of both;
// the caller holds a DeviceGuard.
template <class T, class F>
void channel_map(T* out, const T* a, int64_t total, int64_t C, int64_t S, F f) {
  launch_channel_map<false>(out, a, a, total, C, S, f);
}

// out = f(c, a, b), likewise.
template <class T, class F>
void channel_map(T* out, const T* a, const T* b, int64_t total, int64_t C, int64_t S, F f) {
  launch_channel_map<true>(out, a, b, total, C, S, f);
}

}  // namespace anvil::cuda
