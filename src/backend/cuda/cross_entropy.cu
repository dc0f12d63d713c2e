// CUDA fused cross-entropy (log-softmax + NLL with class weights, ignore_index and label
// smoothing), forward and backward, one warp or block per row of logits. The log-sum-exp (one
// pass over the row, as an online softmax) is computed in float for float32 and the 16-bit
// floats (double for float64); the weighted combination and the outputs are double, as the
// CPU kernel's. Targets are range-checked on the device (index_check.cuh); a bad one is raised
// at the next synchronisation, and its row gets a NaN loss and a zero gradient without reading
// through it.
#include "backend/cuda/index_check.cuh"
#include "backend/cuda/math.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/loss_kernels.h"

namespace anvil::cuda {
namespace {
using backend::CrossEntropyArgs;

// One read of the row (a language model's rows are vocabularies long): each thread keeps the
// largest value it has seen and the sum of exp(x - that), rescaled when it grows; the team
// then rescales the threads' sums to the row's maximum. -inf entries add nothing; a NaN makes
// the sum NaN, as in the CPU's two-pass version.
template <bool kBlock, class T>
__device__ inline compute_t<T> log_sum_exp(const T* x, int64_t c) {
  using C = compute_t<T>;
  using Tm = Team<kBlock>;
  C mx = -INFINITY, s = 0;
  for (int64_t j = Tm::lane(); j < c; j += Tm::size()) {
    const C v = up(x[j]);
    if (v > mx) {
      s = s * m_exp(mx - v) + C(1);
      mx = v;
    } else if (v != C(-INFINITY)) {
      s += m_exp(v - mx);
    }
  }
  const C top = team_fmax<kBlock>(mx);
  s = mx == C(-INFINITY) ? C(0) : s * m_exp(mx - top);
  return top + m_log(team_sum<kBlock>(s));
}

template <bool kBlock, class T>
__global__ void forward_kernel(const T* x, const long long* t, const double* w, double* loss,
                               double* row_weight, int64_t m, int64_t c, long long ignore_index,
                               double e) {
  using Tm = Team<kBlock>;
  for (int64_t i = Tm::first_row(); i < m; i += Tm::row_step()) {
    const long long ti = t[i];
    if (ti == ignore_index) {  // uniform across the team
      if (Tm::lane() == 0) loss[i] = row_weight[i] = 0;
      continue;
    }
    if (ti < 0 || ti >= c) {  // recorded by the range check
      if (Tm::lane() == 0) {
        loss[i] = __longlong_as_double(0x7ff8000000000000ll);  // NaN
        row_weight[i] = 0;
      }
      continue;
    }
    const T* row = x + i * c;
    const double lse = double(log_sum_exp<kBlock>(row, c));
    const double wt = w ? w[ti] : 1.0;
    double l = -(1 - e) * wt * (double(up(row[ti])) - lse);
    if (e > 0) {
      double s = 0;
      for (int64_t j = Tm::lane(); j < c; j += Tm::size())
        s += (w ? w[j] : 1.0) * (double(up(row[j])) - lse);
      l -= e / double(c) * team_sum<kBlock>(s);
    }
    if (Tm::lane() == 0) {
      loss[i] = l;
      row_weight[i] = wt;
    }
  }
}

template <bool kBlock, class T>
__global__ void backward_kernel(const T* x, const long long* t, const double* w, const double* g,
                                T* gx, int64_t m, int64_t c, long long ignore_index, double e) {
  using Tm = Team<kBlock>;
  const double ec = e / double(c);
  double w_sum = double(c);
  if (w && e > 0) {  // w_sum only matters with smoothing
    double s = 0;
    for (int64_t j = Tm::lane(); j < c; j += Tm::size()) s += w[j];
    w_sum = team_sum<kBlock>(s);
  }
  for (int64_t i = Tm::first_row(); i < m; i += Tm::row_step()) {
    const T* row = x + i * c;
    T* grow = gx + i * c;
    const long long ti = t[i];
    if (ti == ignore_index || ti < 0 || ti >= c) {  // a bad target was recorded by the forward
      for (int64_t j = Tm::lane(); j < c; j += Tm::size()) grow[j] = down<T>(0.0f);
      continue;
    }
    const compute_t<T> lse = log_sum_exp<kBlock>(row, c);
    const double wt = w ? w[ti] : 1.0;
    const double p_scale = (1 - e) * wt + ec * w_sum;
    for (int64_t j = Tm::lane(); j < c; j += Tm::size()) {
      const double p = double(m_exp(up(row[j]) - lse));
      double d = p * p_scale - ec * (w ? w[j] : 1.0);
      if (j == ti) d -= (1 - e) * wt;
      grow[j] = from_double<T>(g[i] * d);
    }
  }
}

// Records the first target outside [0, C) other than ignore_index.
RangeCheck check_targets(const Tensor& target, int64_t c, int64_t ignore_index) {
  const ErrorSite site = error_site(target.device().index, "cross_entropy");
  return check_index_range<int64_t>(target, c, site, ErrorCode::TargetOutOfRange, ignore_index,
                                    true, ignore_index);
}

const double* weight_ptr(const Tensor& w) {
  return w.defined() ? static_cast<const double*>(w.data_ptr()) : nullptr;
}

void cross_entropy_cuda(const CrossEntropyArgs& a, const Tensor& loss, const Tensor& row_weight,
                        const Tensor& logits, const Tensor& target, const Tensor& weight) {
  const int64_t m = logits.size(0), c = logits.size(1);
  if (m == 0) return;
  DeviceGuard guard(logits.device().index);
  check_targets(target, c, a.ignore_index);  // the kernel below guards its rows itself
  const auto* t = static_cast<const long long*>(target.data_ptr());
  auto* l = static_cast<double*>(loss.data_ptr());
  auto* rw = static_cast<double*>(row_weight.data_ptr());
  const bool block = c > kWarpRowLimit;
  const int blocks = reduce_blocks(m, block);
  ANVIL_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
    using T = dev_t<scalar_t>;
    const T* x = static_cast<const T*>(logits.data_ptr());
    if (block)
      forward_kernel<true, T><<<blocks, kReduceThreads, 0, current_stream()>>>(
          x, t, weight_ptr(weight), l, rw, m, c, a.ignore_index, a.smoothing);
    else
      forward_kernel<false, T><<<blocks, kReduceThreads, 0, current_stream()>>>(
          x, t, weight_ptr(weight), l, rw, m, c, a.ignore_index, a.smoothing);
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

void cross_entropy_backward_cuda(const CrossEntropyArgs& a, const Tensor& grad_logits,
                                 const Tensor& grad_loss, const Tensor& logits,
                                 const Tensor& target, const Tensor& weight) {
  const int64_t m = logits.size(0), c = logits.size(1);
  if (m == 0 || c == 0) return;
  DeviceGuard guard(logits.device().index);
  const auto* t = static_cast<const long long*>(target.data_ptr());
  const auto* g = static_cast<const double*>(grad_loss.data_ptr());
  const bool block = c > kWarpRowLimit;
  const int blocks = reduce_blocks(m, block);
  ANVIL_DISPATCH_FLOAT(logits.dtype(), "cross_entropy_backward", [&] {
    using T = dev_t<scalar_t>;
    const T* x = static_cast<const T*>(logits.data_ptr());
    T* gx = static_cast<T*>(grad_logits.data_ptr());
    if (block)
      backward_kernel<true, T><<<blocks, kReduceThreads, 0, current_stream()>>>(
          x, t, weight_ptr(weight), g, gx, m, c, a.ignore_index, a.smoothing);
    else
      backward_kernel<false, T><<<blocks, kReduceThreads, 0, current_stream()>>>(
          x, t, weight_ptr(weight), g, gx, m, c, a.ignore_index, a.smoothing);
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

ANVIL_REGISTER_KERNEL(backend::cross_entropy_kernels, CUDA, &cross_entropy_cuda);
ANVIL_REGISTER_KERNEL(backend::cross_entropy_backward_kernels, CUDA, &cross_entropy_backward_cuda);

}  // namespace
}  // namespace anvil::cuda
