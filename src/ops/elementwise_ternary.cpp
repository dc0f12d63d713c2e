// where and clamp: broadcasting, dtype rules, dispatch and gradients.
#include <cmath>
#include <limits>

#include "anvil/autograd/node.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "backend/ternary_kernels.h"
#include "ops/checks.h"

namespace anvil {
namespace {
using backend::TernaryOp;

// The bound standing in for a missing side of clamp: no value of `t` lies beyond it.
Scalar open_bound(DType t, bool upper) {
  switch (t) {
    case DType::UInt8:
      return upper ? 255 : 0;
    case DType::Int32:
      return upper ? std::numeric_limits<int32_t>::max() : std::numeric_limits<int32_t>::min();
    case DType::Int64:
      return upper ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
    default:
      return upper ? INFINITY : -INFINITY;
  }
}
}  // namespace

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  ops::check_defined(cond, "where", "condition");
  ops::check_defined(a, "where", "input");
  ops::check_defined(b, "where", "other");
  ops::check_same_device({cond, a, b}, "where");
  ANVIL_CHECK(cond.dtype() == kBool, DTypeError, "where: expected 'condition' of dtype bool, got ",
              dtype_name(cond.dtype()));
  Shape shape =
      broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  DType t = promote_types(a.dtype(), b.dtype());
  Tensor out = Tensor::empty(shape, TensorOptions(t).device(a.device()));
  {
    NoGradGuard no_grad;
    backend::ternary_kernels[a.device()](TernaryOp::Where, out, cond.expand(shape),
                                         a.to(t).expand(shape), b.to(t).expand(shape));
  }
  bool ga = a.requires_grad(), gb = b.requires_grad();
  Tensor c = cond.detach();
  return autograd::record(
      "WhereBackward", out, {a, b}, [c, ga, gb](const Tensor& g) -> std::vector<Tensor> {
        Tensor zero = zeros({}, g.options());
        return {ga ? where(c, g, zero) : Tensor(), gb ? where(c, zero, g) : Tensor()};
      });
}

Tensor clamp(const Tensor& a, std::optional<Scalar> min, std::optional<Scalar> max) {
  ops::check_defined(a, "clamp", "input");
  ANVIL_CHECK(min || max, ValueError,
              "clamp: expected at least one of 'min' and 'max', got neither");
  ANVIL_CHECK(a.dtype() != kBool, DTypeError,
              "clamp: expected a numeric input (integer or floating), got bool");
  // A floating bound makes an integer tensor float32, as a Python scalar does in torch.
  DType t = a.dtype();
  if (!is_floating(t) && ((min && min->is_floating()) || (max && max->is_floating()))) t = kFloat32;
  TensorOptions opts = TensorOptions(t).device(a.device());
  Tensor out = Tensor::empty(a.shape(), opts);
  {
    NoGradGuard no_grad;
    Tensor lo = scalar_tensor(min ? *min : open_bound(t, false), opts).expand(a.shape());
    Tensor hi = scalar_tensor(max ? *max : open_bound(t, true), opts).expand(a.shape());
    backend::ternary_kernels[a.device()](TernaryOp::Clamp, out, a.to(t), lo, hi);
  }
  Tensor x = a.detach();
  return autograd::record("ClampBackward", out, {a},
                          [x, min, max](const Tensor& g) -> std::vector<Tensor> {
                            // min <= x <= max (false at NaN). torch 2.11 passes the gradient
                            // on the bounds and 2.15 does not; we keep the long-standing rule.
                            Tensor pass;
                            if (min) pass = ge(x, *min);
                            if (max)
                              pass = pass.defined() ? logical_and(pass, le(x, *max)) : le(x, *max);
                            return {where(pass, g, zeros({}, g.options()))};
                          });
}

Tensor clamp_min(const Tensor& a, Scalar min) { return clamp(a, min, std::nullopt); }
Tensor clamp_max(const Tensor& a, Scalar max) { return clamp(a, std::nullopt, max); }

}  // namespace anvil
