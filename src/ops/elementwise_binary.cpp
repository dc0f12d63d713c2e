// Binary arithmetic and comparisons: broadcasting, type promotion, dispatch and gradients.
#include "anvil/autograd/node.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "backend/binary_kernels.h"
#include "ops/checks.h"

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
  Tensor out = Tensor::empty(shape, TensorOptions(out_dtype).device(a.device()));
  NoGradGuard no_grad;  // conversions and expansions here are not part of the graph
  Tensor x = a.to(compute_dtype).expand(shape), y = b.to(compute_dtype).expand(shape);
  backend::binary_kernels[a.device()](op, out, x, y);
  return out;
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
