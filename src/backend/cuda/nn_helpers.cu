// Kernels around the library calls: the integer matrix product (cuBLASLt has no wrapping
// integer gemm), the convolution bias and its gradient.
#include "backend/cuda/nn_helpers.h"
#include "backend/cuda/reduce.cuh"

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

template <class T>
__global__ void add_bias_kernel(T* x, const T* bias, int64_t total, int64_t channels,
                                int64_t spatial) {
  ANVIL_GRID_STRIDE(i, total) {
    const int64_t c = (i / spatial) % channels;
    x[i] = down<T>(up(x[i]) + up(bias[c]));
  }
}

// A block per channel.
template <class T>
__global__ void channel_sums_kernel(T* sums, const T* x, int64_t batch, int64_t channels,
                                    int64_t spatial) {
  using C = compute_t<T>;
  const int64_t c = blockIdx.x, count = batch * spatial;
  C s = 0;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x)
    s += up(x[((j / spatial) * channels + c) * spatial + j % spatial]);
  s = team_sum<true>(s);
  if (threadIdx.x == 0) sums[c] = down<T>(s);
}

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
                      int64_t spatial) {
  const int64_t total = batch * channels * spatial;
  if (total == 0) return;
  ANVIL_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] {
    using T = dev_t<scalar_t>;
    add_bias_kernel<T><<<blocks_for(total), kThreads, 0, current_stream()>>>(
        static_cast<T*>(x.data_ptr()), static_cast<const T*>(bias.data_ptr()), total, channels,
        spatial);
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

void channel_sums(const Tensor& sums, const Tensor& x, int64_t batch, int64_t channels,
                  int64_t spatial) {
  if (channels == 0) return;
  ANVIL_DISPATCH_FLOAT(x.dtype(), "conv2d_backward_weight", [&] {
    using T = dev_t<scalar_t>;
    channel_sums_kernel<T><<<int(channels), kReduceThreads, 0, current_stream()>>>(
        static_cast<T*>(sums.data_ptr()), static_cast<const T*>(x.data_ptr()), batch, channels,
        spatial);
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

}  // namespace anvil::cuda
