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
#include "backend/cuda/scalar_elementwise.h"
#include "backend/cuda/vec.cuh"
#include "backend/loss_kernels.h"

namespace anvil::cuda {
namespace {
using backend::CrossEntropyArgs;

// One read of the row (a language model's rows are vocabularies long): each thread keeps the
// largest value it has seen and the sum of exp(x - that), rescaled when it grows; the team
// then rescales the threads' sums to the row's maximum. -inf entries add nothing; a NaN makes
// the sum NaN, as in the CPU's two-pass version. Lanes take chunks of kChunk elements, loaded
// as one vector when every row is whole aligned chunks (kVec) and one by one otherwise: the
// same sums in the same order either way, and for every dtype computed in float, so that
// 16-bit logits give the bits their float32 cast gives.
constexpr int kChunk = 8;

template <class C>
__device__ inline void lse_add(C v, C& mx, C& s) {
  if (v > mx) {
    s = s * m_exp(mx - v) + C(1);
    mx = v;
  } else if (v != C(-INFINITY)) {
    s += m_exp(v - mx);
  }
}

template <bool kVec, class T>
__device__ inline Vec<T, kChunk> load_chunk(const T* row, int64_t j, int64_t c) {
  if constexpr (kVec) {
    return load_vec<kChunk>(row + j);
  } else {
    Vec<T, kChunk> v;
#pragma unroll
    for (int k = 0; k < kChunk; ++k) v.v[k] = j + k < c ? row[j + k] : row[j];
    return v;
  }
}

template <bool kBlock, bool kVec, class T>
__device__ inline compute_t<T> log_sum_exp(const T* x, int64_t c) {
  using C = compute_t<T>;
  using Tm = Team<kBlock>;
  C mx = -INFINITY, s = 0;
  for (int64_t j = int64_t(Tm::lane()) * kChunk; j < c; j += int64_t(Tm::size()) * kChunk) {
    const Vec<T, kChunk> v = load_chunk<kVec>(x, j, c);
#pragma unroll
    for (int k = 0; k < kChunk; ++k)
      if (kVec || j + k < c) lse_add(C(up(v.v[k])), mx, s);
  }
  const C top = team_fmax<kBlock>(mx);
  s = mx == C(-INFINITY) ? C(0) : s * m_exp(mx - top);
  return top + m_log(team_sum<kBlock>(s));
}

template <bool kBlock, bool kVec, class T>
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
    const double lse = double(log_sum_exp<kBlock, kVec>(row, c));
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

template <bool kBlock, bool kVec, class T>
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
  const int64_t first = int64_t(Tm::lane()) * kChunk, stride = int64_t(Tm::size()) * kChunk;
  for (int64_t i = Tm::first_row(); i < m; i += Tm::row_step()) {
    const T* row = x + i * c;
    T* grow = gx + i * c;
    const long long ti = t[i];
    auto store = [&](int64_t j, const Vec<T, kChunk>& out) {
      if constexpr (kVec) {
        store_vec<kChunk>(grow + j, out);
      } else {
#pragma unroll
        for (int k = 0; k < kChunk; ++k)
          if (j + k < c) grow[j + k] = out.v[k];
      }
    };
    if (ti == ignore_index || ti < 0 || ti >= c) {  // a bad target was recorded by the forward
      Vec<T, kChunk> zero;
#pragma unroll
      for (int k = 0; k < kChunk; ++k) zero.v[k] = down<T>(0.0f);
      for (int64_t j = first; j < c; j += stride) store(j, zero);
      continue;
    }
    const compute_t<T> lse = log_sum_exp<kBlock, kVec>(row, c);
    const double wt = w ? w[ti] : 1.0;
    const double p_scale = (1 - e) * wt + ec * w_sum, gi = g[i];
    for (int64_t j = first; j < c; j += stride) {
      const Vec<T, kChunk> v = load_chunk<kVec>(row, j, c);
      Vec<T, kChunk> out;
#pragma unroll
      for (int k = 0; k < kChunk; ++k) {
        const double p = double(m_exp(up(v.v[k]) - lse));
        double d = p * p_scale - ec * (w && j + k < c ? w[j + k] : 1.0);
        if (j + k == ti) d -= (1 - e) * wt;
        out.v[k] = from_double<T>(gi * d);
      }
      store(j, out);
    }
  }
}

// Calls f(block, vec): block mode for long rows; whole aligned chunks when every row is.
template <class T, class F>
void with_row_layout(const void* x, const void* gx, int64_t c, F&& f) {
  const bool vec = !scalar_elementwise() && c % kChunk == 0 && aligned_for<T, kChunk>(x) &&
                   (!gx || aligned_for<T, kChunk>(gx));
  auto run = [&](auto blk) {
    if (vec) f(blk, std::true_type{});
    else f(blk, std::false_type{});
  };
  if (c > kWarpRowLimit) run(std::true_type{});
  else run(std::false_type{});
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
  ANVIL_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
    using T = dev_t<scalar_t>;
    const T* x = static_cast<const T*>(logits.data_ptr());
    with_row_layout<T>(x, nullptr, c, [&](auto blk, auto vec) {
      constexpr bool kBlock = decltype(blk)::value;
      forward_kernel<kBlock, decltype(vec)::value, T>
          <<<reduce_blocks(m, kBlock), kReduceThreads, 0, current_stream()>>>(
              x, t, weight_ptr(weight), l, rw, m, c, a.ignore_index, a.smoothing);
    });
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
  ANVIL_DISPATCH_FLOAT(logits.dtype(), "cross_entropy_backward", [&] {
    using T = dev_t<scalar_t>;
    const T* x = static_cast<const T*>(logits.data_ptr());
    T* gx = static_cast<T*>(grad_logits.data_ptr());
    with_row_layout<T>(x, gx, c, [&](auto blk, auto vec) {
      constexpr bool kBlock = decltype(blk)::value;
      backward_kernel<kBlock, decltype(vec)::value, T>
          <<<reduce_blocks(m, kBlock), kReduceThreads, 0, current_stream()>>>(
              x, t, weight_ptr(weight), g, gx, m, c, a.ignore_index, a.smoothing);
    });
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

ANVIL_REGISTER_KERNEL(backend::cross_entropy_kernels, CUDA, &cross_entropy_cuda);
ANVIL_REGISTER_KERNEL(backend::cross_entropy_backward_kernels, CUDA, &cross_entropy_backward_cuda);

}  // namespace
}  // namespace anvil::cuda
