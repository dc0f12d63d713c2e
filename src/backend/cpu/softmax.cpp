// CPU softmax and log-softmax, forward and backward, one row at a time with sums in double.
#include <cmath>

#include "backend/cpu/loops.h"
#include "backend/softmax_kernels.h"

namespace anvil::cpu {
namespace {
using backend::SoftmaxArgs;

// Calls row(first_offset, stride) for each of the outer * inner rows, across threads.
template <class Row>
void for_rows(const SoftmaxArgs& s, Row&& row) {
  parallel_for(s.outer * s.inner, s.n * 4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t o = r / s.inner, i = r % s.inner;
      row(o * s.n * s.inner + i, s.inner);
    }
  });
}

template <class T>
void forward(const SoftmaxArgs& s, const Tensor& y, const Tensor& x) {
  const T* px = x.data<T>();
  T* py = y.data<T>();
  for_rows(s, [&](int64_t off, int64_t st) {
    const T* in = px + off;
    T* out = py + off;
    double mx = -INFINITY;
    for (int64_t j = 0; j < s.n; ++j) mx = std::fmax(mx, double(compute_t<T>(in[j * st])));
    double sum = 0;
    for (int64_t j = 0; j < s.n; ++j) sum += std::exp(double(compute_t<T>(in[j * st])) - mx);
    if (s.log) {
      const double lse = mx + std::log(sum);
      for (int64_t j = 0; j < s.n; ++j) out[j * st] = T(double(compute_t<T>(in[j * st])) - lse);
    } else {
      for (int64_t j = 0; j < s.n; ++j)
        out[j * st] = T(std::exp(double(compute_t<T>(in[j * st])) - mx) / sum);
    }
  });
}

template <class T>
void backward(const SoftmaxArgs& s, const Tensor& gx, const Tensor& gy, const Tensor& y) {
  const T* pgy = gy.data<T>();
  const T* py = y.data<T>();
  T* pgx = gx.data<T>();
  for_rows(s, [&](int64_t off, int64_t st) {
    auto g = [&](int64_t j) { return double(compute_t<T>(pgy[off + j * st])); };
    auto v = [&](int64_t j) { return double(compute_t<T>(py[off + j * st])); };
    double dot = 0;
    if (s.log) {
      for (int64_t j = 0; j < s.n; ++j) dot += g(j);
      for (int64_t j = 0; j < s.n; ++j) pgx[off + j * st] = T(g(j) - std::exp(v(j)) * dot);
    } else {
      for (int64_t j = 0; j < s.n; ++j) dot += g(j) * v(j);
      for (int64_t j = 0; j < s.n; ++j) pgx[off + j * st] = T(v(j) * (g(j) - dot));
    }
  });
}

void softmax_cpu(const SoftmaxArgs& s, const Tensor& y, const Tensor& x) {
  ANVIL_DISPATCH_FLOAT(x.dtype(), "softmax", [&] { forward<scalar_t>(s, y, x); });
}

void softmax_backward_cpu(const SoftmaxArgs& s, const Tensor& gx, const Tensor& gy,
                          const Tensor& y) {
  ANVIL_DISPATCH_FLOAT(y.dtype(), "softmax_backward", [&] { backward<scalar_t>(s, gx, gy, y); });
}

ANVIL_REGISTER_KERNEL(backend::softmax_kernels, CPU, &softmax_cpu);
ANVIL_REGISTER_KERNEL(backend::softmax_backward_kernels, CPU, &softmax_backward_cpu);

}  // namespace
}  // namespace anvil::cpu
