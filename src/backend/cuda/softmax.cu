// CUDA softmax and log-softmax, forward and backward. Rows along the last dim (inner == 1) get
// a warp (short rows) or a block (long rows) each; rows along an inner dim get a thread each,
// so that neighbouring threads read neighbouring elements. float32 and the 16-bit floats
// compute in float, float64 in double.
#include "backend/cuda/math.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/softmax_kernels.h"

namespace anvil::cuda {
namespace {
using backend::SoftmaxArgs;

// ---- rows along the last dim: a team per row --------------------------------------------

template <bool kBlock, class T>
__global__ void softmax_rows_kernel(const T* x, T* y, int64_t rows, int64_t n, bool log) {
  using C = compute_t<T>;
  using Tm = Team<kBlock>;
  for (int64_t r = Tm::first_row(); r < rows; r += Tm::row_step()) {
    const T* in = x + r * n;
    T* out = y + r * n;
    C mx = -INFINITY;
    for (int64_t j = Tm::lane(); j < n; j += Tm::size()) mx = m_fmax(mx, up(in[j]));
    mx = team_fmax<kBlock>(mx);
    C sum = 0;
    for (int64_t j = Tm::lane(); j < n; j += Tm::size()) sum += m_exp(up(in[j]) - mx);
    sum = team_sum<kBlock>(sum);
    if (log) {
      const C lse = mx + m_log(sum);
      for (int64_t j = Tm::lane(); j < n; j += Tm::size()) out[j] = down<T>(up(in[j]) - lse);
    } else {
      for (int64_t j = Tm::lane(); j < n; j += Tm::size())
        out[j] = down<T>(m_exp(up(in[j]) - mx) / sum);
    }
  }
}

template <bool kBlock, class T>
__global__ void softmax_backward_rows_kernel(const T* gy, const T* y, T* gx, int64_t rows,
                                             int64_t n, bool log) {
  using C = compute_t<T>;
  using Tm = Team<kBlock>;
  for (int64_t r = Tm::first_row(); r < rows; r += Tm::row_step()) {
    const T* g = gy + r * n;
    const T* v = y + r * n;
    T* out = gx + r * n;
    C dot = 0;
    for (int64_t j = Tm::lane(); j < n; j += Tm::size()) dot += log ? up(g[j]) : up(g[j]) * up(v[j]);
    dot = team_sum<kBlock>(dot);
    if (log) {
      for (int64_t j = Tm::lane(); j < n; j += Tm::size())
        out[j] = down<T>(up(g[j]) - m_exp(up(v[j])) * dot);
    } else {
      for (int64_t j = Tm::lane(); j < n; j += Tm::size())
        out[j] = down<T>(up(v[j]) * (up(g[j]) - dot));
    }
  }
}

// ---- rows along an inner dim: a thread per row ------------------------------------------

template <class T>
__global__ void softmax_cols_kernel(const T* x, T* y, int64_t outer, int64_t n, int64_t inner,
                                    bool log) {
  using C = compute_t<T>;
  ANVIL_GRID_STRIDE(r, outer * inner) {
    const int64_t off = (r / inner) * n * inner + r % inner;
    const T* in = x + off;
    T* out = y + off;
    C mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) mx = m_fmax(mx, up(in[j * inner]));
    C sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += m_exp(up(in[j * inner]) - mx);
    if (log) {
      const C lse = mx + m_log(sum);
      for (int64_t j = 0; j < n; ++j) out[j * inner] = down<T>(up(in[j * inner]) - lse);
    } else {
      for (int64_t j = 0; j < n; ++j) out[j * inner] = down<T>(m_exp(up(in[j * inner]) - mx) / sum);
    }
  }
}

template <class T>
__global__ void softmax_backward_cols_kernel(const T* gy, const T* y, T* gx, int64_t outer,
                                             int64_t n, int64_t inner, bool log) {
  using C = compute_t<T>;
  ANVIL_GRID_STRIDE(r, outer * inner) {
    const int64_t off = (r / inner) * n * inner + r % inner;
    const T* g = gy + off;
    const T* v = y + off;
    T* out = gx + off;
    C dot = 0;
    for (int64_t j = 0; j < n; ++j)
      dot += log ? up(g[j * inner]) : up(g[j * inner]) * up(v[j * inner]);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t k = j * inner;
      out[k] = log ? down<T>(up(g[k]) - m_exp(up(v[k])) * dot) : down<T>(up(v[k]) * (up(g[k]) - dot));
    }
  }
}

template <class T>
void forward(const SoftmaxArgs& s, const Tensor& y, const Tensor& x) {
  const T* px = static_cast<const T*>(x.data_ptr());
  T* py = static_cast<T*>(y.data_ptr());
  if (s.inner == 1) {
    const bool block = s.n > kWarpRowLimit;
    const int blocks = reduce_blocks(s.outer, block);
    if (block)
      softmax_rows_kernel<true, T><<<blocks, kReduceThreads, 0, current_stream()>>>(
          px, py, s.outer, s.n, s.log);
    else
      softmax_rows_kernel<false, T><<<blocks, kReduceThreads, 0, current_stream()>>>(
          px, py, s.outer, s.n, s.log);
  } else {
    softmax_cols_kernel<T><<<blocks_for(s.outer * s.inner), kThreads, 0, current_stream()>>>(
        px, py, s.outer, s.n, s.inner, s.log);
  }
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

template <class T>
void backward(const SoftmaxArgs& s, const Tensor& gx, const Tensor& gy, const Tensor& y) {
  const T* pgy = static_cast<const T*>(gy.data_ptr());
  const T* py = static_cast<const T*>(y.data_ptr());
  T* pgx = static_cast<T*>(gx.data_ptr());
  if (s.inner == 1) {
    const bool block = s.n > kWarpRowLimit;
    const int blocks = reduce_blocks(s.outer, block);
    if (block)
      softmax_backward_rows_kernel<true, T><<<blocks, kReduceThreads, 0, current_stream()>>>(
          pgy, py, pgx, s.outer, s.n, s.log);
    else
      softmax_backward_rows_kernel<false, T><<<blocks, kReduceThreads, 0, current_stream()>>>(
          pgy, py, pgx, s.outer, s.n, s.log);
  } else {
    const int blocks = blocks_for(s.outer * s.inner);
    softmax_backward_cols_kernel<T><<<blocks, kThreads, 0, current_stream()>>>(
        pgy, py, pgx, s.outer, s.n, s.inner, s.log);
  }
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

void softmax_cuda(const SoftmaxArgs& s, const Tensor& y, const Tensor& x) {
  if (s.outer * s.n * s.inner == 0) return;
  DeviceGuard guard(x.device().index);
  ANVIL_DISPATCH_FLOAT(x.dtype(), "softmax", [&] { forward<dev_t<scalar_t>>(s, y, x); });
}

void softmax_backward_cuda(const SoftmaxArgs& s, const Tensor& gx, const Tensor& gy,
                           const Tensor& y) {
  if (s.outer * s.n * s.inner == 0) return;
  DeviceGuard guard(y.device().index);
  ANVIL_DISPATCH_FLOAT(y.dtype(), "softmax_backward",
                       [&] { backward<dev_t<scalar_t>>(s, gx, gy, y); });
}

ANVIL_REGISTER_KERNEL(backend::softmax_kernels, CUDA, &softmax_cuda);
ANVIL_REGISTER_KERNEL(backend::softmax_backward_kernels, CUDA, &softmax_backward_cuda);

}  // namespace
}  // namespace anvil::cuda
