// Kernels around the library calls: the integer matrix product (cuBLASLt has no wrapping
// integer gemm), the convolution bias and its gradient (the per-channel passes of
// channel_map.cuh and channel_reduce.cuh: vectorised, several blocks per channel, deterministic).
#include "backend/cuda/channel_map.cuh"
#include "backend/cuda/channel_reduce.cuh"
#include "backend/cuda/nn_helpers.h"

namespace anvil::cuda {
namespace {

// Unsigned arithmetic of T's width: wraps exactly as the CPU loop's result does.
template <class T> struct Wrap { using type = std::make_unsigned_t<T>; };

// A thread per output element; the k loop runs in order, as on the CPU.
template <class T>
__global__ void integer_matmul_kernel(T* out, const T* a, const T* b, bool ta, bool tb,
                                      int64_t batch, int64_t m, int64_t n, int64_t k) {
  using U = typename Wrap<T>::type;
  ANVIL_GRID_STRIDE(idx, batch * m * n) {
    const int64_t bi = idx / (m * n), i = (idx / n) % m, j = idx % n;
    const T* A = a + bi * m * k;
    const T* B = b + bi * k * n;
    U s = 0;
    for (int64_t p = 0; p < k; ++p)
      s = U(s + U(ta ? A[p * m + i] : A[i * k + p]) * U(tb ? B[j * k + p] : B[p * n + j]));
    out[idx] = T(s);
  }
}

// x + bias[c] rounded to T, then (kRelu) ReLU of that value: conv2d + bias + relu in one pass.
template <class T, bool kRelu>
struct AddBias {
  const T* bias;  // null: no bias
  template <class I> __device__ T operator()(I c, T x) const {
    const T v = bias ? down<T>(up(x) + up(bias[c])) : x;
    if constexpr (kRelu) {
      const auto r = up(v);
      return (r > 0 || r != r) ? v : down<T>(0.0f);
    }
    return v;
  }
};

// The values of x, summed in double.
template <class T>
struct Values {
  const T* x;
  struct At {
    const T* x;
    template <class I> __device__ double operator()(I off) const { return double(up(x[off])); }
  };
  __device__ At at(int64_t) const { return {x}; }
};

template <class T>
struct StoreSum {
  T* sums;
  __device__ void operator()(int64_t c, double total) const { sums[c] = down<T>(total); }
};

}  // namespace

void integer_matmul(const Tensor& out, const Tensor& a, const Tensor& b, bool trans_a,
                    bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k) {
  const int64_t total = batch * m * n;
  auto launch = [&](auto tag) {
    using T = decltype(tag);
    integer_matmul_kernel<T><<<blocks_for(total), kThreads, 0, current_stream()>>>(
        static_cast<T*>(out.data_ptr()), static_cast<const T*>(a.data_ptr()),
        static_cast<const T*>(b.data_ptr()), trans_a, trans_b, batch, m, n, k);
  };
  switch (out.dtype()) {
    case kInt32: launch(int32_t{}); break;
    case kInt64: launch(int64_t{}); break;
    case kUInt8: launch(uint8_t{}); break;
    default:
      throw DTypeError(std::string("matmul: dtype ") + dtype_name(out.dtype()) +
                       " is not supported");
  }
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

void add_channel_bias(const Tensor& x, const Tensor& bias, int64_t batch, int64_t channels,
                      int64_t spatial, bool relu) {
  const int64_t total = batch * channels * spatial;
  if (total == 0) return;
  ANVIL_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] {
    using T = dev_t<scalar_t>;
    T* data = static_cast<T*>(x.data_ptr());
    const T* b = bias.defined() ? static_cast<const T*>(bias.data_ptr()) : nullptr;
    if (relu)
      channel_map<T>(data, data, total, channels, spatial, AddBias<T, true>{b});
    else
      channel_map<T>(data, data, total, channels, spatial, AddBias<T, false>{b});
  });
}

void channel_sums(const Tensor& sums, const Tensor& x, int64_t batch, int64_t channels,
                  int64_t spatial) {
  if (channels == 0) return;
  ANVIL_DISPATCH_FLOAT(x.dtype(), "conv2d_backward_weight", [&] {
    using T = dev_t<scalar_t>;
    const StoreSum<T> store{static_cast<T*>(sums.data_ptr())};
    if (batch * spatial == 0) {
      channel_finish<double>(nullptr, channels, store);
      return;
    }
    const auto partials = channel_partials<double>(
        x.device().index, batch, channels, spatial, Values<T>{static_cast<const T*>(x.data_ptr())});
    channel_finish(&partials, channels, store);
  });
}

}  // namespace anvil::cuda
