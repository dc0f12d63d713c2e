// linear_act: a dense layer, its bias and its activation as one kernel and one autograd node.
// The node keeps what the activation's gradient needs (the output for relu, the pre-activation
// for gelu) plus x and w, and computes g' = act'(g), grad_x = g' w, and grad_w = g'^T x with
// grad_b = sum(g', 0) from the same product where the backend can (cuBLASLt's BGRADB).
#include "anvil/ops/linear_act.h"

#include "amp/autocast_ops.h"
#include "anvil/autograd/node.h"
#include "anvil/ops/activation.h"
#include "anvil/ops/linalg.h"
#include "anvil/ops/reduction.h"
#include "backend/linear_kernels.h"
#include "backend/matmul_kernels.h"
#include "ops/checks.h"
#include "ops/unary.h"

namespace anvil {
namespace {

using backend::LinearAct;

LinearAct backend_act(Activation act) {
  switch (act) {
    case Activation::Relu: return LinearAct::Relu;
    case Activation::GeluTanh: return LinearAct::GeluTanh;
    case Activation::None: break;
  }
  return LinearAct::None;
}

// Integer layers are rare; they keep the unfused ops (gelu refuses them as it does alone).
Tensor unfused(const Tensor& x, const Tensor& w, const Tensor& b, Activation act) {
  Tensor y = linear(x, w, b);
  switch (act) {
    case Activation::Relu: return relu(y);
    case Activation::GeluTanh: return gelu(y, "tanh");
    case Activation::None: break;
  }
  return y;
}

void check_args(const Tensor& x, const Tensor& w, const Tensor& b) {
  constexpr const char* op = "linear_act";
  ops::check_defined(x, op, "input");
  ops::check_defined(w, op, "weight");
  ops::check_same_device({x, w, b}, op);
  ops::check_dim(w, 2, op, "weight");
  ANVIL_CHECK(x.dim() >= 1, ShapeError, op, ": expected input with at least 1 dim, got shape ",
              to_string(x.shape()));
  ANVIL_CHECK(x.size(-1) == w.size(1), ShapeError, op, ": expected input with last dim ",
              w.size(1), " (weight is ", to_string(w.shape()), "), got shape ",
              to_string(x.shape()));
  ANVIL_CHECK(w.dtype() == x.dtype(), DTypeError, op, ": expected weight of dtype ",
              dtype_name(x.dtype()), ", got ", dtype_name(w.dtype()));
  ANVIL_CHECK(x.dtype() != kBool, DTypeError, op, ": dtype bool is not supported");
  if (b.defined()) {
    ANVIL_CHECK(b.shape() == Shape{w.size(0)}, ShapeError, op, ": expected bias of shape [",
                w.size(0), "] (weight is ", to_string(w.shape()), "), got shape ",
                to_string(b.shape()));
    ANVIL_CHECK(b.dtype() == x.dtype(), DTypeError, op, ": expected bias of dtype ",
                dtype_name(x.dtype()), ", got ", dtype_name(b.dtype()));
  }
}

}  // namespace

Tensor linear_act(const Tensor& x, const Tensor& w, const Tensor& b, Activation act) {
  if (amp::detail::autocast_active({&x, &w, &b}))
    return amp::detail::run_autocast(
        amp::detail::CastPolicy::LowerPrecision, {x, w, b},
        [act](const auto& t) { return linear_act(t[0], t[1], t[2], act); });
  check_args(x, w, b);
  if (!x.is_floating_point()) return unfused(x, w, b, act);

  const int64_t n = w.size(0), k = w.size(1);
  Shape out_shape = x.shape();
  out_shape.back() = n;
  const int64_t m = numel(Shape(x.shape().begin(), x.shape().end() - 1));
  const bool ga = x.requires_grad(), gw = w.requires_grad(), gb = b.defined() && b.requires_grad();
  const bool record = autograd::needs_grad({&x, &w, &b});
  const LinearAct bact = backend_act(act);

  Tensor x2, wc, bc, out2, pre, out;
  {
    NoGradGuard no_grad;
    x2 = x.contiguous().reshape({m, k});
    wc = w.contiguous();
    bc = b.defined() ? b.contiguous() : Tensor();
    out2 = Tensor::empty({m, n}, x.options());
    // gelu's gradient needs its input; relu's needs only the output.
    pre = backend::linear_act_kernels[x.device()](out2, x2, wc, bc, bact,
                                                  record && act == Activation::GeluTanh);
    out = out2.view(out_shape);
  }
  if (!record) return out;
  // Detached: an output that held itself through its grad_fn would never be freed.
  Tensor saved = act == Activation::Relu ? out2.detach() : pre;
  const Shape x_shape = x.shape();
  return autograd::record(
      "LinearActBackward", out, {x, w, b},
      [=](const Tensor& g) -> std::vector<Tensor> {
        Tensor gz = g.to(x2.dtype()).contiguous().reshape({m, n});
        if (act == Activation::Relu)
          gz = ops::unary_backward(backend::UnaryOp::Relu, gz, saved);
        else if (act == Activation::GeluTanh)
          gz = ops::unary_backward(backend::UnaryOp::GeluTanh, gz, saved);
        Tensor grad_x, grad_w, grad_b;
        if (ga) {  // g' [m, n] x w [n, k]
          grad_x = Tensor::empty({m, k}, x2.options());
          backend::matmul_kernels[x2.device()](grad_x, gz, wc, false, false);
          grad_x = grad_x.view(x_shape);
        }
        if (gw) {
          grad_w = Tensor::empty({n, k}, wc.options());
          if (gb) grad_b = Tensor::empty({n}, wc.options());
          backend::linear_wgrad_kernels[x2.device()](grad_w, grad_b, gz, x2);
        } else if (gb) {
          grad_b = sum(gz, {0});
        }
        return {grad_x, grad_w, grad_b};
      });
}

}  // namespace anvil
