#include "support/check.h"

#include <cmath>
#include <sstream>

#include "support/oracle.h"

namespace anvil::test {

namespace {

// The worst element of |actual - expected| against limit(i, |expected[i]|), where the two
// differ by more than it (NaN matches NaN); `explain` says what the limit was.
template <class Limit, class Explain>
::testing::AssertionResult compare(const Tensor& actual, const Tensor& expected, Limit limit,
                                   Explain explain) {
  if (!actual.defined() || !expected.defined())
    return ::testing::AssertionFailure() << "undefined tensor (actual defined: " << actual.defined()
                                         << ", expected defined: " << expected.defined() << ")";
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shape " << to_string(actual.shape()) << " vs expected "
                                         << to_string(expected.shape());
  NoGradGuard no_grad;
  auto a = actual.to(kCPU).to(kFloat64).contiguous().to_vector<double>();
  auto e = expected.to(kCPU).to(kFloat64).contiguous().to_vector<double>();
  double worst = 0;
  size_t worst_i = a.size();
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(e[i])) continue;
    const double err = std::fabs(a[i] - e[i]), lim = limit(i, std::fabs(e[i]));
    if (err <= lim) continue;
    const double excess = std::isnan(err) ? INFINITY : err / lim;
    if (worst_i == a.size() || excess > worst) worst = excess, worst_i = i;
  }
  if (worst_i == a.size()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "element " << worst_i << " of shape " << to_string(actual.shape()) << ": got "
         << a[worst_i] << ", expected " << e[worst_i] << " (|diff| "
         << std::fabs(a[worst_i] - e[worst_i]) << " > " << explain(worst_i) << ")";
}

}  // namespace

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double rtol,
                                     double atol) {
  std::ostringstream limit;
  limit << "atol " << atol << " + rtol " << rtol << " * |expected|";
  return compare(
      actual, expected, [&](size_t, double e) { return atol + rtol * e; },
      [&](size_t) { return limit.str(); });
}

double epsilon(DType dt) {
  switch (dt) {
    case kFloat16: return std::ldexp(1.0, -10);
    case kBFloat16: return std::ldexp(1.0, -7);
    case kFloat32: return std::ldexp(1.0, -23);
    case kFloat64: return std::ldexp(1.0, -52);
    default: throw DTypeError(std::string("epsilon: expected a floating dtype, got ") + dtype_name(dt));
  }
}

::testing::AssertionResult within(const Tensor& actual, const Tensor& expected, const Tensor& bound) {
  if (!bound.defined() || !actual.defined()) return ::testing::AssertionFailure() << "undefined tensor";
  std::vector<double> b;
  {
    NoGradGuard no_grad;
    b = bound.to(kCPU).to(kFloat64).expand(actual.shape()).contiguous().to_vector<double>();
  }
  return compare(
      actual, expected, [&](size_t i, double) { return b[i]; },
      [&](size_t i) { return "bound " + std::to_string(b[i]); });
}

Tensor uniform(const Shape& shape, uint64_t seed, double lo, double hi, DType dtype) {
  Generator g(seed);
  Tensor t = empty(shape, kFloat64);
  uniform_(t, lo, hi, &g);
  return t.to(dtype);
}

namespace {
double dot(const Tensor& a, const Tensor& b) {
  NoGradGuard no_grad;
  return sum(mul(a.to(kFloat64), b.to(kFloat64))).item<double>();
}
}  // namespace

::testing::AssertionResult gradcheck(const Fn& f, const std::vector<Tensor>& inputs, double eps,
                                     double atol, double rtol) {
  std::vector<Tensor> xs;
  std::vector<Tensor> wrt;
  std::vector<size_t> wrt_index;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    if (!in.defined()) {
      xs.push_back(in);
      continue;
    }
    Tensor x = in.detach().clone();
    if (in.requires_grad()) {
      if (x.dtype() != kFloat64)
        return ::testing::AssertionFailure() << "gradcheck: input " << i << " must be float64";
      x.requires_grad_(true);
      wrt.push_back(x);
      wrt_index.push_back(i);
    }
    xs.push_back(x);
  }
  if (wrt.empty()) return ::testing::AssertionFailure() << "gradcheck: no input requires grad";
  Tensor out = f(xs);
  if (!out.requires_grad()) return ::testing::AssertionFailure() << "gradcheck: output has no grad_fn";
  for (uint64_t trial = 0; trial < 2; ++trial) {
    Tensor v = uniform(out.shape(), 1000 + trial, -1, 1, out.dtype());
    std::vector<Tensor> analytical = autograd::grad({out}, wrt, {v}, /*retain_graph=*/true);
    for (size_t k = 0; k < wrt.size(); ++k) {
      Tensor x = wrt[k];
      auto an = analytical[k].to(kFloat64).contiguous().to_vector<double>();
      for (int64_t e = 0; e < x.numel(); ++e) {
        auto eval = [&](double delta) {
          NoGradGuard no_grad;
          std::vector<Tensor> ys = xs;
          Tensor y = x.detach().clone();
          y.data<double>()[e] += delta;
          ys[wrt_index[k]] = y;
          return dot(f(ys), v);
        };
        double num = (eval(eps) - eval(-eps)) / (2 * eps);
        if (!(std::fabs(num - an[size_t(e)]) <= atol + rtol * std::fabs(num)))
          return ::testing::AssertionFailure()
                 << "gradcheck: input " << wrt_index[k] << " element " << e << ": autograd "
                 << an[size_t(e)] << " vs finite difference " << num << " (projection " << trial
                 << ")";
      }
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult matches_torch(const std::string& expr, const std::vector<Tensor>& inputs,
                                         const Fn& f, TorchTolerance tol) {
  auto& oracle = TorchOracle::get();
  if (!oracle.available()) return ::testing::AssertionFailure() << oracle.why_unavailable();
  std::vector<Tensor> leaves;
  std::vector<bool> want;
  for (const Tensor& in : inputs) {
    Tensor x = in.detach();
    bool g = tol.grads && is_floating(x.dtype());
    if (g) x.requires_grad_(true);
    leaves.push_back(x);
    want.push_back(g);
  }
  Tensor out = f(leaves);
  Tensor g_out;
  if (tol.grads && out.requires_grad()) {
    g_out = uniform(out.shape(), 7, -1, 1, out.dtype());
    out.backward(g_out);
  }
  TorchResult ref;
  try {
    ref = oracle.run(expr, inputs, g_out, want);
  } catch (const Error& e) {
    return ::testing::AssertionFailure() << e.what();
  }
  if (ref.out.dtype() != out.dtype())
    return ::testing::AssertionFailure() << expr << ": dtype " << dtype_name(out.dtype())
                                         << " vs torch's " << dtype_name(ref.out.dtype());
  // A lost autograd node would otherwise turn the check into a forward-only comparison.
  if (ref.requires_grad != out.requires_grad())
    return ::testing::AssertionFailure()
           << expr << ": torch's result " << (ref.requires_grad ? "requires" : "does not require")
           << " grad, anvil's " << (out.requires_grad() ? "does" : "does not");
  auto r = all_close(out, ref.out, tol.rtol, tol.atol);
  if (!r) return ::testing::AssertionFailure() << expr << " forward: " << r.message();
  if (!g_out.defined()) return ::testing::AssertionSuccess();
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (!want[i]) continue;
    Tensor mine = leaves[i].grad();
    Tensor theirs = i < ref.grads.size() ? ref.grads[i] : Tensor();
    if (!theirs.defined()) theirs = zeros_like(leaves[i].detach());
    if (!mine.defined()) mine = zeros_like(leaves[i].detach());
    auto rg = all_close(mine, theirs, tol.rtol, tol.atol);
    if (!rg)
      return ::testing::AssertionFailure() << expr << " gradient of input " << i << ": "
                                           << rg.message();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace anvil::test
