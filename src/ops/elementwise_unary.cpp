// Unary math: dtype rules, dispatch and gradients.
#include "amp/autocast_ops.h"
#include "anvil/autograd/node.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "ops/checks.h"
#include "ops/layout.h"
#include "ops/unary.h"

namespace anvil {
namespace ops {

namespace {
// Ops whose result keeps an integer input's dtype (the rest compute in floating point).
bool keeps_integer(backend::UnaryOp op) {
  using backend::UnaryOp;
  return op == UnaryOp::Neg || op == UnaryOp::Abs || op == UnaryOp::Sign || op == UnaryOp::Square ||
         op == UnaryOp::Relu;
}
}  // namespace

Tensor unary(backend::UnaryOp op, const Tensor& a, const char* name, double alpha) {
  check_defined(a, name, "input");
  NoGradGuard no_grad;
  Tensor in = a;
  DType out_dtype = a.dtype();
  if (backend::is_predicate(op)) {
    out_dtype = kBool;
  } else if (keeps_integer(op)) {
    ANVIL_CHECK(a.dtype() != kBool, DTypeError, name,
                ": expected a numeric input (integer or floating), got bool");
  } else if (!is_floating(a.dtype())) {
    out_dtype = kFloat32;
    in = a.to(kFloat32);
  }
  return elementwise_result(a.shape(), TensorOptions(out_dtype).device(a.device()), {in},
                            [&](const Tensor& out, const std::vector<Tensor>& x) {
                              backend::unary_kernels[a.device()](op, out, x[0], alpha);
                            });
}

Tensor unary_backward(backend::UnaryOp op, const Tensor& grad, const Tensor& saved, double alpha) {
  NoGradGuard no_grad;
  Tensor g = grad.to(saved.dtype()).expand(saved.shape());
  return elementwise_result(saved.shape(), saved.options(), {g, saved},
                            [&](const Tensor& out, const std::vector<Tensor>& x) {
                              backend::unary_backward_kernels[saved.device()](op, out, x[0], x[1],
                                                                              alpha);
                            });
}

}  // namespace ops

using backend::UnaryOp;
using Grads = std::vector<Tensor>;

// Saved tensors are detached: an output that held itself through its grad_fn would never be
// freed.
Tensor neg(const Tensor& a) {
  return autograd::record("NegBackward", ops::unary(UnaryOp::Neg, a, "neg"), {a},
                          [](const Tensor& g) -> Grads { return {neg(g)}; });
}

Tensor exp(const Tensor& a) {
  if (amp::detail::autocast_active({&a}))
    return amp::detail::run_autocast(amp::detail::CastPolicy::Float32, {a},
                                     [](const auto& t) { return exp(t[0]); });
  Tensor out = ops::unary(UnaryOp::Exp, a, "exp");
  Tensor y = out.detach();
  return autograd::record("ExpBackward", out, {a},
                          [y](const Tensor& g) -> Grads { return {mul(g, y)}; });
}

Tensor log(const Tensor& a) {
  if (amp::detail::autocast_active({&a}))
    return amp::detail::run_autocast(amp::detail::CastPolicy::Float32, {a},
                                     [](const auto& t) { return log(t[0]); });
  Tensor x = a.detach();
  return autograd::record("LogBackward", ops::unary(UnaryOp::Log, a, "log"), {a},
                          [x](const Tensor& g) -> Grads { return {div(g, x)}; });
}

Tensor sqrt(const Tensor& a) {
  Tensor out = ops::unary(UnaryOp::Sqrt, a, "sqrt");
  Tensor y = out.detach();
  return autograd::record("SqrtBackward", out, {a},
                          [y](const Tensor& g) -> Grads { return {div(g, mul(y, 2.0))}; });
}

Tensor rsqrt(const Tensor& a) {
  if (amp::detail::autocast_active({&a}))
    return amp::detail::run_autocast(amp::detail::CastPolicy::Float32, {a},
                                     [](const auto& t) { return rsqrt(t[0]); });
  Tensor out = ops::unary(UnaryOp::Rsqrt, a, "rsqrt");
  Tensor y = out.detach();
  return autograd::record("RsqrtBackward", out, {a}, [y](const Tensor& g) -> Grads {
    return {mul(g, mul(mul(y, square(y)), -0.5))};  // d/dx x^-1/2 = -x^-3/2 / 2
  });
}

Tensor abs(const Tensor& a) {
  Tensor x = a.detach();
  return autograd::record("AbsBackward", ops::unary(UnaryOp::Abs, a, "abs"), {a},
                          [x](const Tensor& g) -> Grads { return {mul(g, sign(x))}; });
}

Tensor sign(const Tensor& a) {
  return autograd::record("SignBackward", ops::unary(UnaryOp::Sign, a, "sign"), {a},
                          [](const Tensor& g) -> Grads { return {zeros_like(g)}; });
}

Tensor square(const Tensor& a) {
  Tensor x = a.detach();
  return autograd::record("SquareBackward", ops::unary(UnaryOp::Square, a, "square"), {a},
                          [x](const Tensor& g) -> Grads { return {mul(g, mul(x, 2.0))}; });
}

Tensor sin(const Tensor& a) {
  Tensor x = a.detach();
  return autograd::record("SinBackward", ops::unary(UnaryOp::Sin, a, "sin"), {a},
                          [x](const Tensor& g) -> Grads { return {mul(g, cos(x))}; });
}

Tensor cos(const Tensor& a) {
  Tensor x = a.detach();
  return autograd::record("CosBackward", ops::unary(UnaryOp::Cos, a, "cos"), {a},
                          [x](const Tensor& g) -> Grads { return {neg(mul(g, sin(x)))}; });
}

Tensor logical_not(const Tensor& a) { return ops::unary(UnaryOp::LogicalNot, a, "logical_not"); }
Tensor isnan(const Tensor& a) { return ops::unary(UnaryOp::IsNan, a, "isnan"); }

}  // namespace anvil
