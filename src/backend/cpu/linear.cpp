// CPU dense layers: OpenBLAS gemm, then one pass that adds the bias and applies the activation.
// The gemm call and the element formulas are those of matmul, add, relu and gelu(tanh) on the
// CPU, so the fused result is bit for bit the unfused one.
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/blas.h"
#include "backend/cpu/loops.h"
#include "backend/linear_kernels.h"

namespace anvil::cpu {
namespace {
using backend::LinearAct;

// As unary.cpp's gelu(tanh): sqrt(2 / pi) and the cubic coefficient.
constexpr double kGeluBeta = 0.7978845608028654;
constexpr double kGeluKappa = 0.044715;

template <class C>
C activate(C x, LinearAct act) {
  switch (act) {
    case LinearAct::Relu: return (x > C(0) || std::isnan(x)) ? x : C(0);
    case LinearAct::GeluTanh: {
      C inner = C(kGeluBeta) * (x + C(kGeluKappa) * x * x * x);
      return C(C(0.5) * x * (C(1) + C(std::tanh(inner))));
    }
    case LinearAct::None: break;
  }
  return x;
}

// y [M, N] holds x w^T; adds b (may be null) row by row, rounding to T as add does, and writes
// act of it to out (which may be y itself).
template <class T>
void bias_act(T* y, const T* b, T* out, int64_t m, int64_t n, LinearAct act) {
  using C = compute_t<T>;
  parallel_for(m, n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      T* yr = y + i * n;
      T* orow = out + i * n;
      for (int64_t j = 0; j < n; ++j) {
        const T v = b ? T(C(yr[j]) + C(b[j])) : yr[j];
        yr[j] = v;
        orow[j] = T(activate(C(v), act));
      }
    }
  });
}

template <class T>
void forward(const Tensor& y, const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& b,
             LinearAct act) {
  const int64_t m = x.size(0), k = x.size(1), n = w.size(0);
  T* py = y.data<T>();
  if (k == 0)  // an empty sum; BLAS would also reject the zero leading dims
    std::memset(static_cast<void*>(py), 0, size_t(m * n) * sizeof(T));
  else
    gemm(false, true, m, n, k, compute_t<T>(1), x.data<T>(), k, w.data<T>(), k, compute_t<T>(0),
         py, n);
  bias_act<T>(py, b.defined() ? b.data<T>() : nullptr, out.data<T>(), m, n, act);
}

Tensor linear_act_cpu(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& b,
                      LinearAct act, bool keep_pre) {
  Tensor pre = keep_pre ? Tensor::empty(out.shape(), out.options()) : Tensor();
  if (out.numel() == 0) return pre;
  ANVIL_DISPATCH_FLOAT(x.dtype(), "linear_act",
                       [&] { forward<scalar_t>(keep_pre ? pre : out, out, x, w, b, act); });
  return pre;
}

template <class T>
void wgrad(const Tensor& gw, const Tensor& gb, const Tensor& g, const Tensor& x) {
  const int64_t m = g.size(0), n = g.size(1), k = x.size(1);
  if (gw.numel() > 0) {
    if (m == 0)
      std::memset(gw.data_ptr(), 0, size_t(gw.numel()) * gw.element_size());
    else
      gemm(true, false, n, k, m, compute_t<T>(1), g.data<T>(), n, x.data<T>(), k,
           compute_t<T>(0), gw.data<T>(), k);
  }
  if (!gb.defined()) return;
  // Column sums in double, each thread over its own columns (rows stay in cache order).
  const T* pg = g.data<T>();
  T* pb = gb.data<T>();
  parallel_for(n, m, [&](int64_t begin, int64_t end) {
    std::vector<double> acc(size_t(end - begin), 0.0);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = begin; j < end; ++j) acc[size_t(j - begin)] += double(pg[i * n + j]);
    for (int64_t j = begin; j < end; ++j) pb[j] = T(acc[size_t(j - begin)]);
  });
}

void linear_wgrad_cpu(const Tensor& gw, const Tensor& gb, const Tensor& g, const Tensor& x) {
  ANVIL_DISPATCH_FLOAT(g.dtype(), "linear_wgrad", [&] { wgrad<scalar_t>(gw, gb, g, x); });
}

ANVIL_REGISTER_KERNEL(backend::linear_act_kernels, CPU, &linear_act_cpu);
ANVIL_REGISTER_KERNEL(backend::linear_wgrad_kernels, CPU, &linear_wgrad_cpu);

}  // namespace
}  // namespace anvil::cpu
