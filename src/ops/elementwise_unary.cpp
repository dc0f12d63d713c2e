// Unary math: dispatch and gradients.
#include "anvil/autograd/node.h"
#include "anvil/ops/elementwise.h"
#include "backend/unary_kernels.h"
#include "ops/checks.h"

namespace anvil {
namespace {
using backend::UnaryOp;

Tensor compute(UnaryOp op, const Tensor& a, const char* name, double alpha = 0) {
  ops::check_defined(a, name, "input");
  Tensor out = Tensor::empty(a.shape(), a.options());
  backend::unary_kernels[a.device()](op, out, a, alpha);
  return out;
}
}  // namespace

Tensor neg(const Tensor& a) {
  ANVIL_CHECK(a.dtype() != kBool, DTypeError, "neg: negation of a bool tensor is not supported");
  return autograd::record("NegBackward", compute(UnaryOp::Neg, a, "neg"), {a},
                          [](const Tensor& g) -> std::vector<Tensor> { return {neg(g)}; });
}

Tensor sqrt(const Tensor& a) {
  Tensor out = compute(UnaryOp::Sqrt, a, "sqrt");
  return autograd::record("SqrtBackward", out, {a},
                          [out](const Tensor& g) -> std::vector<Tensor> {
                            return {div(g, mul(out.detach(), 2.0))};
                          });
}

}  // namespace anvil
