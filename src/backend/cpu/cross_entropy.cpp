// CPU fused cross-entropy: one pass per row for the log-sum-exp, sums in double.
#include <cmath>

#include "backend/cpu/loops.h"
#include "backend/loss_kernels.h"

namespace anvil::cpu {
namespace {
using backend::CrossEntropyArgs;

// Checked serially first: nothing may throw inside a parallel region.
void check_targets(const int64_t* t, int64_t m, int64_t c, int64_t ignore_index) {
  for (int64_t i = 0; i < m; ++i)
    if (t[i] != ignore_index && (t[i] < 0 || t[i] >= c))
      throw IndexError(detail::cat("cross_entropy: target ", t[i], " is out of bounds for ", c,
                                   " classes (expected a value in [0, ", c, ") or ignore_index ",
                                   ignore_index, ")"));
}

template <class T>
double log_sum_exp(const T* x, int64_t c) {
  double mx = -INFINITY;
  for (int64_t j = 0; j < c; ++j) mx = std::fmax(mx, double(compute_t<T>(x[j])));
  double s = 0;
  for (int64_t j = 0; j < c; ++j) s += std::exp(double(compute_t<T>(x[j])) - mx);
  return mx + std::log(s);
}

template <class T>
void forward(const CrossEntropyArgs& a, const Tensor& loss, const Tensor& row_weight,
             const Tensor& logits, const Tensor& target, const Tensor& weight) {
  const int64_t m = logits.size(0), c = logits.size(1);
  const T* x = logits.data<T>();
  const int64_t* t = target.data<int64_t>();
  const double* w = weight.defined() ? weight.data<double>() : nullptr;
  double* out = loss.data<double>();
  double* rw = row_weight.data<double>();
  check_targets(t, m, c, a.ignore_index);
  const double e = a.smoothing;
  parallel_for(m, c * 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      if (t[i] == a.ignore_index) {
        out[i] = rw[i] = 0;
        continue;
      }
      const T* row = x + i * c;
      const double lse = log_sum_exp(row, c);
      const double wt = w ? w[t[i]] : 1.0;
      double l = -(1 - e) * wt * (double(compute_t<T>(row[t[i]])) - lse);
      if (e > 0) {
        double s = 0;
        for (int64_t j = 0; j < c; ++j)
          s += (w ? w[j] : 1.0) * (double(compute_t<T>(row[j])) - lse);
        l -= e / double(c) * s;
      }
      out[i] = l;
      rw[i] = wt;
    }
  });
}

template <class T>
void backward(const CrossEntropyArgs& a, const Tensor& grad_logits, const Tensor& grad_loss,
              const Tensor& logits, const Tensor& target, const Tensor& weight) {
  const int64_t m = logits.size(0), c = logits.size(1);
  const T* x = logits.data<T>();
  const int64_t* t = target.data<int64_t>();
  const double* w = weight.defined() ? weight.data<double>() : nullptr;
  const double* g = grad_loss.data<double>();
  T* gx = grad_logits.data<T>();
  const double e = a.smoothing, ec = e / double(c);
  double w_sum = double(c);
  if (w) {
    w_sum = 0;
    for (int64_t j = 0; j < c; ++j) w_sum += w[j];
  }
  parallel_for(m, c * 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T* row = x + i * c;
      T* grow = gx + i * c;
      if (t[i] == a.ignore_index) {
        for (int64_t j = 0; j < c; ++j) grow[j] = T(0);
        continue;
      }
      const double lse = log_sum_exp(row, c);
      const double wt = w ? w[t[i]] : 1.0;
      const double p_scale = (1 - e) * wt + ec * w_sum;
      for (int64_t j = 0; j < c; ++j) {
        const double p = std::exp(double(compute_t<T>(row[j])) - lse);
        double d = p * p_scale - ec * (w ? w[j] : 1.0);
        if (j == t[i]) d -= (1 - e) * wt;
        grow[j] = T(g[i] * d);
      }
    }
  });
}

void cross_entropy_cpu(const CrossEntropyArgs& a, const Tensor& loss, const Tensor& row_weight,
                       const Tensor& logits, const Tensor& target, const Tensor& weight) {
  ANVIL_DISPATCH_FLOAT(logits.dtype(), "cross_entropy",
                       [&] { forward<scalar_t>(a, loss, row_weight, logits, target, weight); });
}

void cross_entropy_backward_cpu(const CrossEntropyArgs& a, const Tensor& grad_logits,
                                const Tensor& grad_loss, const Tensor& logits, const Tensor& target,
                                const Tensor& weight) {
  ANVIL_DISPATCH_FLOAT(logits.dtype(), "cross_entropy_backward", [&] {
    backward<scalar_t>(a, grad_logits, grad_loss, logits, target, weight);
  });
}

ANVIL_REGISTER_KERNEL(backend::cross_entropy_kernels, CPU, &cross_entropy_cpu);
ANVIL_REGISTER_KERNEL(backend::cross_entropy_backward_kernels, CPU, &cross_entropy_backward_cpu);

}  // namespace
}  // namespace anvil::cpu
