// CPU halves of clip_grad_norm_: the norm of many gradients together (accumulated in double
// over fixed chunks, so the result does not depend on the thread count) and the scaling.
#include <cmath>
#include <type_traits>

#include "backend/cpu/loops.h"
#include "backend/optim_kernels.h"

namespace anvil::cpu {
namespace {
namespace om = backend::optim_math;

constexpr int64_t kChunk = 65536;

enum class NormMode { Two, One, Inf, P };

NormMode mode_of(double p) {
  if (std::isinf(p)) return NormMode::Inf;
  if (p == 2) return NormMode::Two;
  if (p == 1) return NormMode::One;
  return NormMode::P;
}

// Combines partial results: sums, or maxima where NaN wins.
double combine(NormMode m, double a, double b) {
  if (m != NormMode::Inf) return a + b;
  return (a != a || a > b) ? a : b;
}

template <class T>
void chunk_partials(const Tensor& g, NormMode m, double p, std::vector<double>& out) {
  using C = compute_t<T>;
  const T* x = static_cast<const T*>(g.data_ptr());
  const int64_t n = g.numel(), chunks = (n + kChunk - 1) / kChunk;
  const size_t first = out.size();
  out.resize(first + size_t(chunks), 0.0);
  parallel_for(chunks, kChunk, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      double acc = 0;
      const int64_t end = std::min(n, (c + 1) * kChunk);
      for (int64_t i = c * kChunk; i < end; ++i) {
        const double v = std::abs(double(C(x[i])));
        switch (m) {
          case NormMode::Two:
            acc += v * v;
            break;
          case NormMode::One:
            acc += v;
            break;
          case NormMode::Inf:
            acc = combine(m, acc, v);
            break;
          case NormMode::P:
            acc += std::pow(v, p);
            break;
        }
      }
      out[first + size_t(c)] = acc;
    }
  });
}

void grad_norm_cpu(const std::vector<Tensor>& grads, double p, const Tensor& out) {
  const NormMode m = mode_of(p);
  std::vector<double> partials;
  for (const Tensor& g : grads)
    ANVIL_DISPATCH_FLOAT(g.dtype(), "clip_grad_norm_",
                         [&] { chunk_partials<scalar_t>(g, m, p, partials); });
  double acc = 0;
  for (double v : partials) acc = combine(m, acc, v);
  double norm = acc;
  if (m == NormMode::Two) norm = std::sqrt(acc);
  if (m == NormMode::P) norm = std::pow(acc, 1.0 / p);
  // Doubles reach the 16-bit types through float, as anvil's conversions do.
  ANVIL_DISPATCH_FLOAT(out.dtype(), "clip_grad_norm_", [&] {
    if constexpr (std::is_same_v<scalar_t, double>)
      *static_cast<double*>(out.data_ptr()) = norm;
    else
      *static_cast<scalar_t*>(out.data_ptr()) = scalar_t(float(norm));
  });
}

// Rounds a value of D's compute type to D and back.
template <class D>
struct RoundTo {
  compute_t<D> operator()(compute_t<D> x) const { return compute_t<D>(D(x)); }
};

template <class T, class D>
void scale(const Tensor& g, D total_d, double max_norm) {
  using C = compute_t<T>;
  using CD = compute_t<D>;
  const RoundTo<D> round;
  const CD coef = om::clip_coefficient(CD(total_d), round(CD(max_norm)), round(CD(1e-6)), round);
  const C c = C(T(coef));
  T* x = static_cast<T*>(g.data_ptr());
  parallel_for(g.numel(), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) x[i] = T(C(x[i]) * c);
  });
}

void grad_scale_cpu(const std::vector<Tensor>& grads, const Tensor& total, double max_norm) {
  ANVIL_DISPATCH_FLOAT(total.dtype(), "clip_grad_norm_", [&] {
    using D = scalar_t;
    const D t = *static_cast<const D*>(total.data_ptr());
    for (const Tensor& g : grads)
      ANVIL_DISPATCH_FLOAT(g.dtype(), "clip_grad_norm_",
                           [&] { scale<scalar_t, D>(g, t, max_norm); });
  });
}

ANVIL_REGISTER_KERNEL(backend::grad_norm_kernels, CPU, &grad_norm_cpu);
ANVIL_REGISTER_KERNEL(backend::grad_scale_kernels, CPU, &grad_scale_cpu);

}  // namespace
}  // namespace anvil::cpu
