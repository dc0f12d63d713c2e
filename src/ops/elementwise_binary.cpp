// Binary arithmetic and comparisons: broadcasting, type promotion, dispatch and gradients.
#include <cmath>

#include "amp/autocast_ops.h"
#include "anvil/autograd/node.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/reduction.h"
#include "backend/binary_kernels.h"
#include "ops/checks.h"
#include "ops/layout.h"

namespace anvil {
namespace {
using backend::BinaryOp;

const char* op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
    case BinaryOp::Pow: return "pow";
    case BinaryOp::Maximum: return "maximum";
    case BinaryOp::Minimum: return "minimum";
    case BinaryOp::Eq: return "eq";
    case BinaryOp::Ne: return "ne";
    case BinaryOp::Lt: return "lt";
    case BinaryOp::Le: return "le";
    case BinaryOp::Gt: return "gt";
    case BinaryOp::Ge: return "ge";
    case BinaryOp::LogicalAnd: return "logical_and";
    case BinaryOp::LogicalOr: return "logical_or";
  }
  return "binary";
}

// Runs the kernel on broadcast, converted operands; no autograd.
Tensor compute(BinaryOp op, const Tensor& a, const Tensor& b, DType compute_dtype) {
  const char* name = op_name(op);
  ops::check_defined(a, name, "input");
  ops::check_defined(b, name, "other");
  ops::check_same_device({a, b}, name);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  DType out_dtype = backend::is_comparison(op) ? kBool : compute_dtype;
  const TensorOptions options = TensorOptions(out_dtype).device(a.device());
  NoGradGuard no_grad;  // conversions and expansions here are not part of the graph
  Tensor x = a.to(compute_dtype).expand(shape), y = b.to(compute_dtype).expand(shape);
  return ops::elementwise_result(shape, options, {x, y},
                                 [&](const Tensor& out, const std::vector<Tensor>& in) {
                                   backend::binary_kernels[a.device()](op, out, in[0], in[1]);
                                 });
}

DType arithmetic_dtype(BinaryOp op, const Tensor& a, const Tensor& b) {
  DType t = promote_types(a.dtype(), b.dtype());
  if (op == BinaryOp::Div && !is_floating(t)) t = kFloat32;  // true division
  return t;
}

// A scalar operand as a 0-dim tensor whose dtype does not promote the tensor's category.
Tensor wrap(const Tensor& like, Scalar s) {
  DType t = like.dtype();
  if (s.is_floating() && !is_floating(t)) t = kFloat32;
  if (!s.is_floating() && t == kBool && !s.is_bool()) t = kInt64;
  return scalar_tensor(s, TensorOptions(t).device(like.device()));
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b, Scalar alpha) {
  if (alpha.to_double() != 1.0) return add(a, mul(b, alpha));
  Tensor out = compute(BinaryOp::Add, a, b, arithmetic_dtype(BinaryOp::Add, a, b));
  return autograd::record("AddBackward", out, {a, b},
                          [](const Tensor& g) -> std::vector<Tensor> { return {g, g}; });
}

Tensor sub(const Tensor& a, const Tensor& b, Scalar alpha) {
  if (alpha.to_double() != 1.0) return sub(a, mul(b, alpha));
  Tensor out = compute(BinaryOp::Sub, a, b, arithmetic_dtype(BinaryOp::Sub, a, b));
  return autograd::record("SubBackward", out, {a, b},
                          [](const Tensor& g) -> std::vector<Tensor> { return {g, neg(g)}; });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = compute(BinaryOp::Mul, a, b, arithmetic_dtype(BinaryOp::Mul, a, b));
  bool ga = a.requires_grad(), gb = b.requires_grad();
  return autograd::record("MulBackward", out, {a, b},
                          [a, b, ga, gb](const Tensor& g) -> std::vector<Tensor> {
                            return {ga ? mul(g, b) : Tensor(), gb ? mul(g, a) : Tensor()};
                          });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = compute(BinaryOp::Div, a, b, arithmetic_dtype(BinaryOp::Div, a, b));
  bool ga = a.requires_grad(), gb = b.requires_grad();
  return autograd::record("DivBackward", out, {a, b},
                          [a, b, ga, gb](const Tensor& g) -> std::vector<Tensor> {
                            Tensor gab = ga || gb ? div(g, b) : Tensor();
                            return {ga ? gab : Tensor(), gb ? neg(mul(gab, div(a, b))) : Tensor()};
                          });
}

// d/da a^e = e a^(e-1), taken as 0 where e == 0 (also at a == 0); d/de a^e = a^e log(a),
// taken as 0 where a == 0 and e >= 0 (PyTorch's conventions).
Tensor pow(const Tensor& a, const Tensor& exponent) {
  if (amp::detail::autocast_active({&a, &exponent}))
    return amp::detail::run_autocast(amp::detail::CastPolicy::Float32, {a, exponent},
                                     [](const auto& t) { return pow(t[0], t[1]); });
  Tensor out = compute(BinaryOp::Pow, a, exponent, arithmetic_dtype(BinaryOp::Pow, a, exponent));
  bool ga = a.requires_grad(), ge_ = exponent.requires_grad();
  Tensor x = a.detach(), e = exponent.detach(), y = out.detach();
  return autograd::record("PowBackward", out, {a, exponent},
                          [x, e, y, ga, ge_](const Tensor& g) -> std::vector<Tensor> {
                            Tensor zero = zeros({}, g.options());
                            Tensor da, de;
                            if (ga) da = where(eq(e, 0), zero, mul(g, mul(e, pow(x, sub(e, 1)))));
                            if (ge_)
                              de = where(logical_and(eq(x, 0), ge(e, 0)), zero,
                                         mul(g, mul(y, log(x))));
                            return {da, de};
                          });
}

Tensor pow(const Tensor& a, Scalar exponent) {
  ops::check_defined(a, "pow", "input");
  ANVIL_CHECK(is_floating(a.dtype()) || exponent.is_floating() || exponent.to_int() >= 0,
              ValueError, "pow: expected a non-negative exponent for an integer tensor (",
              dtype_name(a.dtype()), "), got ", exponent.to_int(),
              "; integers to negative integer powers are not allowed");
  return pow(a, wrap(a, exponent));
}

Tensor pow(Scalar base, const Tensor& exponent) {
  ops::check_defined(exponent, "pow", "exponent");
  return pow(wrap(exponent, base), exponent);
}

namespace {
// maximum/minimum: the gradient goes to the operand that was picked, split evenly on ties
// (as PyTorch does).
Tensor extremum(BinaryOp op, const Tensor& a, const Tensor& b, const char* node) {
  Tensor out = compute(op, a, b, promote_types(a.dtype(), b.dtype()));
  bool ga = a.requires_grad(), gb = b.requires_grad(), is_max = op == BinaryOp::Maximum;
  Tensor x = a.detach(), y = b.detach();
  return autograd::record(node, out, {a, b},
                          [x, y, ga, gb, is_max](const Tensor& g) -> std::vector<Tensor> {
                            Tensor zero = zeros({}, g.options());
                            Tensor tie = eq(x, y), half = mul(g, 0.5);
                            Tensor x_lost = is_max ? lt(x, y) : gt(x, y);
                            Tensor y_lost = is_max ? gt(x, y) : lt(x, y);
                            return {ga ? where(tie, half, where(x_lost, zero, g)) : Tensor(),
                                    gb ? where(tie, half, where(y_lost, zero, g)) : Tensor()};
                          });
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  return extremum(BinaryOp::Maximum, a, b, "MaximumBackward");
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return extremum(BinaryOp::Minimum, a, b, "MinimumBackward");
}

Tensor add(const Tensor& a, Scalar b) { return add(a, wrap(a, b)); }
Tensor sub(const Tensor& a, Scalar b) { return sub(a, wrap(a, b)); }
Tensor mul(const Tensor& a, Scalar b) { return mul(a, wrap(a, b)); }
Tensor div(const Tensor& a, Scalar b) { return div(a, wrap(a, b)); }
Tensor operator-(Scalar a, const Tensor& b) { return sub(wrap(b, a), b); }
Tensor operator/(Scalar a, const Tensor& b) { return div(wrap(b, a), b); }

#define ANVIL_COMPARISON(name, op)                                                \
  Tensor name(const Tensor& a, const Tensor& b) {                                \
    return compute(op, a, b, promote_types(a.dtype(), b.dtype()));               \
  }                                                                              \
  Tensor name(const Tensor& a, Scalar b) { return name(a, wrap(a, b)); }
ANVIL_COMPARISON(eq, BinaryOp::Eq)
ANVIL_COMPARISON(ne, BinaryOp::Ne)
ANVIL_COMPARISON(lt, BinaryOp::Lt)
ANVIL_COMPARISON(le, BinaryOp::Le)
ANVIL_COMPARISON(gt, BinaryOp::Gt)
ANVIL_COMPARISON(ge, BinaryOp::Ge)
#undef ANVIL_COMPARISON

Tensor logical_and(const Tensor& a, const Tensor& b) {
  return compute(BinaryOp::LogicalAnd, a, b, promote_types(a.dtype(), b.dtype()));
}
Tensor logical_or(const Tensor& a, const Tensor& b) {
  return compute(BinaryOp::LogicalOr, a, b, promote_types(a.dtype(), b.dtype()));
}

bool equal(const Tensor& a, const Tensor& b) {
  ops::check_defined(a, "equal", "input");
  ops::check_defined(b, "equal", "other");
  ops::check_same_device({a, b}, "equal");
  if (a.shape() != b.shape()) return false;
  NoGradGuard no_grad;
  return sum(ne(a, b)).item<int64_t>() == 0;
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  ops::check_defined(a, "allclose", "input");
  ops::check_defined(b, "allclose", "other");
  ops::check_same_device({a, b}, "allclose");
  ANVIL_CHECK(rtol >= 0 && atol >= 0, ValueError,
              "allclose: expected non-negative rtol and atol, got rtol ", rtol, " and atol ", atol);
  broadcast_shapes(a.shape(), b.shape(), "allclose");
  NoGradGuard no_grad;
  DType t = promote_types(a.dtype(), b.dtype());
  if (!is_floating(t)) t = kFloat64;
  Tensor x = a.to(t), y = b.to(t);
  // Exact equality covers infinities of one sign; otherwise the error must be finite (lt
  // inf is false for inf and NaN) and within tolerance, as torch.isclose.
  Tensor err = abs(sub(x, y));
  Tensor close = logical_or(eq(x, y), logical_and(lt(err, INFINITY),
                                                  le(err, add(mul(abs(y), rtol), atol))));
  if (equal_nan) close = logical_or(close, logical_and(isnan(x), isnan(y)));
  return sum(logical_not(close)).item<int64_t>() == 0;
}

// ---- in place ----
namespace {
Tensor& inplace(BinaryOp op, Tensor& a, const Tensor& b, const char* name) {
  ops::check_inplace(a, name);
  ops::check_same_device({a, b}, name);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  ANVIL_CHECK(shape == a.shape(), ShapeError, name, ": the result of shape ", to_string(shape),
              " does not fit the in-place operand of shape ", to_string(a.shape()));
  DType t = promote_types(a.dtype(), b.dtype());
  if (op == BinaryOp::Div && !is_floating(t)) t = kFloat32;
  ANVIL_CHECK(promote_types(t, a.dtype()) == a.dtype(), DTypeError, name, ": result dtype ",
              dtype_name(t), " cannot be written into a tensor of dtype ", dtype_name(a.dtype()));
  NoGradGuard no_grad;
  Tensor y = b.to(a.dtype()).expand(shape);
  // Kernels read each element before writing it, so out may alias a.
  backend::binary_kernels[a.device()](op, a, a, y);
  return a;
}
}  // namespace

Tensor& add_(Tensor& a, const Tensor& b, Scalar alpha) {
  if (alpha.to_double() != 1.0) {
    NoGradGuard g;
    return inplace(BinaryOp::Add, a, mul(b, alpha), "add_");
  }
  return inplace(BinaryOp::Add, a, b, "add_");
}
Tensor& sub_(Tensor& a, const Tensor& b, Scalar alpha) {
  if (alpha.to_double() != 1.0) {
    NoGradGuard g;
    return inplace(BinaryOp::Sub, a, mul(b, alpha), "sub_");
  }
  return inplace(BinaryOp::Sub, a, b, "sub_");
}
Tensor& mul_(Tensor& a, const Tensor& b) { return inplace(BinaryOp::Mul, a, b, "mul_"); }
Tensor& div_(Tensor& a, const Tensor& b) { return inplace(BinaryOp::Div, a, b, "div_"); }
Tensor& add_(Tensor& a, Scalar b) { return inplace(BinaryOp::Add, a, wrap(a, b), "add_"); }
Tensor& mul_(Tensor& a, Scalar b) { return inplace(BinaryOp::Mul, a, wrap(a, b), "mul_"); }

}  // namespace anvil
