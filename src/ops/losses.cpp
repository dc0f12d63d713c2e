// Losses composed from ops: argument checks here, arithmetic through the op API (so autograd
// records it), and one hand-written backward where composition would give NaN (BCE at p = 0
// or 1).
#include "anvil/ops/losses.h"

#include <limits>

#include "amp/autocast_ops.h"
#include "anvil/autograd/node.h"
#include "anvil/ops/activation.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/indexing.h"
#include "anvil/ops/reduction.h"
#include "ops/checks.h"

namespace anvil {

namespace {

Tensor reduce(const Tensor& loss, Reduction reduction) {
  switch (reduction) {
    case Reduction::None:
      return loss;
    case Reduction::Sum:
      return sum(loss);
    case Reduction::Mean:
      break;
  }
  return mean(loss);  // nan for an empty input, as in PyTorch
}

// Checks for the element-wise losses: defined, floating, one device, same shape.
void check_pointwise(const Tensor& input, const Tensor& target, const char* op) {
  ops::check_defined(input, op, "input");
  ops::check_defined(target, op, "target");
  ops::check_same_device({input, target}, op);
  ops::check_floating(input, op, "input");
  ops::check_floating(target, op, "target");
  ANVIL_CHECK(input.shape() == target.shape(), ShapeError, op,
              ": expected target of the input's shape ", to_string(input.shape()), ", got ",
              to_string(target.shape()));
}

// An optional weight that must broadcast to `shape`.
void check_broadcast_weight(const Tensor& weight, const Shape& shape, const char* op,
                            const char* arg) {
  if (!weight.defined()) return;
  ops::check_floating(weight, op, arg);
  bool ok = weight.dim() <= int64_t(shape.size());
  for (int64_t i = 1; ok && i <= weight.dim(); ++i) {
    int64_t w = weight.size(-i), s = shape[shape.size() - size_t(i)];
    ok = w == 1 || w == s;
  }
  ANVIL_CHECK(ok, ShapeError, op, ": expected '", arg, "' broadcastable to the input's shape ",
              to_string(shape), ", got ", to_string(weight.shape()));
}

// Checks for the class-indexed losses; returns C.
int64_t check_classes(const Tensor& input, const Tensor& weight, const char* op) {
  ANVIL_CHECK(input.dim() >= 1, ShapeError, op,
              ": expected input of shape [C], [N, C] or [N, C, d1, ...], got shape ",
              to_string(input.shape()));
  const int64_t c = input.size(input.dim() == 1 ? 0 : 1);
  ANVIL_CHECK(c > 0, ShapeError, op, ": expected at least one class, got input of shape ",
              to_string(input.shape()));
  if (weight.defined()) {
    ops::check_floating(weight, op, "weight");
    ANVIL_CHECK(weight.shape() == Shape{c}, ShapeError, op, ": expected weight of shape [", c,
                "] (one per class), got ", to_string(weight.shape()));
  }
  return c;
}

// Per-class weights [C] shaped to broadcast against input [C] or [N, C, d1, ...].
Tensor class_weight_view(const Tensor& weight, const Tensor& input) {
  Tensor w = weight.detach().to(input.dtype());
  if (input.dim() <= 2) return w;
  Shape s(size_t(input.dim() - 1), 1);
  s[0] = weight.size(0);
  return w.reshape(s);
}

}  // namespace

Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight,
                Reduction reduction, int64_t ignore_index) {
  if (amp::detail::autocast_active({&input, &target, &weight}))
    return amp::detail::run_autocast(
        amp::detail::CastPolicy::Float32, {input, target, weight},
        [&](const auto& t) { return nll_loss(t[0], t[1], t[2], reduction, ignore_index); });
  const char* op = "nll_loss";
  ops::check_defined(input, op, "input");
  ops::check_defined(target, op, "target");
  ops::check_same_device({input, target, weight}, op);
  ops::check_floating(input, op, "input");
  ops::check_index(target, op, "target");
  const int64_t c = check_classes(input, weight, op);
  const int64_t cd = input.dim() == 1 ? 0 : 1;
  Shape expected = input.shape();
  expected.erase(expected.begin() + cd);
  ANVIL_CHECK(target.shape() == expected, ShapeError, op, ": expected target of shape ",
              to_string(expected), " for input of shape ", to_string(input.shape()), ", got ",
              to_string(target.shape()));

  Tensor t = target.to(kInt64);
  Tensor counted = ne(t, ignore_index);
  Tensor safe = where(counted, t, zeros_like(t));  // ignored targets pick class 0, weight 0
  if (t.numel() > 0) {
    const int64_t hi = max(safe).item<int64_t>(), lo = min(safe).item<int64_t>();
    ANVIL_CHECK(lo >= 0 && hi < c, IndexError, op, ": target ", lo < 0 ? lo : hi,
                " is out of range for ", c, " classes (expected 0 <= target < ", c,
                " or ignore_index = ", ignore_index, ")");
  }
  Tensor x = input.dim() == 1 ? input.unsqueeze(0) : input;
  Tensor idx = input.dim() == 1 ? safe.reshape({1, 1}) : safe.unsqueeze(1);
  Tensor picked = gather(x, 1, idx).squeeze(1).reshape(target.shape());
  Tensor w = counted.to(input.dtype());
  if (weight.defined())
    w = mul(w, index_select(weight.detach().to(input.dtype()), 0, safe.reshape({-1}))
                   .reshape(target.shape()));
  Tensor loss = neg(mul(picked, w));
  if (reduction == Reduction::Mean) return div(sum(loss), sum(w));
  return reduce(loss, reduction);
}

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight,
                            Reduction reduction) {
  if (amp::detail::autocast_active({&input, &target, &weight}))
    return amp::detail::run_autocast(
        amp::detail::CastPolicy::Float32, {input, target, weight},
        [&](const auto& t) { return binary_cross_entropy(t[0], t[1], t[2], reduction); });
  const char* op = "binary_cross_entropy";
  check_pointwise(input, target, op);
  ops::check_same_device({input, weight}, op);
  check_broadcast_weight(weight, input.shape(), op, "weight");
  if (input.numel() > 0) {
    const double lo = min(input).item<double>(), hi = max(input).item<double>();
    ANVIL_CHECK(!(lo < 0) && !(hi > 1), ValueError, op,
                ": expected input probabilities in [0, 1] (apply sigmoid first, or use "
                "binary_cross_entropy_with_logits), got a value of ",
                lo < 0 ? lo : hi);
  }
  Tensor x = input.detach(), t = target.detach();
  Tensor w = weight.defined() ? weight.detach().to(input.dtype()) : Tensor();
  Tensor loss;
  {
    NoGradGuard no_grad;
    loss = neg(add(mul(t, clamp_min(log(x), -100)), mul(1.0 - t, clamp_min(log(1.0 - x), -100))));
    if (w.defined()) loss = mul(loss, w);
    loss = reduce(loss, reduction);
  }
  const int64_t n = input.numel();
  // Gradients as PyTorch's: d/dp = w (p - t) / max(p (1 - p), eps), d/dt = w (log(1-p) - log p).
  return autograd::record("BinaryCrossEntropyBackward", loss, {input, target},
                          [=](const Tensor& g) -> std::vector<Tensor> {
                            Tensor gl = reduction == Reduction::Mean ? div(g, double(n)) : g;
                            if (w.defined()) gl = mul(gl, w);
                            Tensor gx = div(mul(gl, sub(x, t)), clamp_min(mul(x, 1.0 - x), 1e-12));
                            Tensor gt = mul(gl, sub(log(1.0 - x), log(x)));
                            return {gx.expand(x.shape()), gt.expand(t.shape())};
                          });
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight, Reduction reduction,
                                        const Tensor& pos_weight) {
  if (amp::detail::autocast_active({&input, &target, &weight, &pos_weight}))
    return amp::detail::run_autocast(
        amp::detail::CastPolicy::Float32, {input, target, weight, pos_weight}, [&](const auto& t) {
          return binary_cross_entropy_with_logits(t[0], t[1], t[2], reduction, t[3]);
        });
  const char* op = "binary_cross_entropy_with_logits";
  check_pointwise(input, target, op);
  ops::check_same_device({input, weight, pos_weight}, op);
  check_broadcast_weight(weight, input.shape(), op, "weight");
  check_broadcast_weight(pos_weight, input.shape(), op, "pos_weight");
  // -log(sigmoid(x)) = log(1 + exp(-|x|)) + max(-x, 0), finite for any x.
  Tensor neg_log_sigmoid = add(log(add(exp(neg(abs(input))), 1.0)), clamp_min(neg(input), 0.0));
  Tensor loss;
  if (pos_weight.defined()) {
    Tensor lw = add(mul(target, sub(pos_weight.detach().to(input.dtype()), 1.0)), 1.0);
    loss = add(mul(1.0 - target, input), mul(lw, neg_log_sigmoid));
  } else {
    loss = add(mul(1.0 - target, input), neg_log_sigmoid);
  }
  if (weight.defined()) loss = mul(loss, weight.detach().to(input.dtype()));
  return reduce(loss, reduction);
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  if (amp::detail::autocast_active({&input, &target}))
    return amp::detail::run_autocast(
        amp::detail::CastPolicy::Float32, {input, target},
        [&](const auto& t) { return mse_loss(t[0], t[1], reduction); });
  check_pointwise(input, target, "mse_loss");
  return reduce(square(sub(input, target)), reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  if (amp::detail::autocast_active({&input, &target}))
    return amp::detail::run_autocast(amp::detail::CastPolicy::Float32, {input, target},
                                     [&](const auto& t) { return l1_loss(t[0], t[1], reduction); });
  check_pointwise(input, target, "l1_loss");
  return reduce(abs(sub(input, target)), reduction);
}

Tensor huber_loss(const Tensor& input, const Tensor& target, Reduction reduction, double delta) {
  if (amp::detail::autocast_active({&input, &target}))
    return amp::detail::run_autocast(
        amp::detail::CastPolicy::Float32, {input, target},
        [&](const auto& t) { return huber_loss(t[0], t[1], reduction, delta); });
  check_pointwise(input, target, "huber_loss");
  ANVIL_CHECK(delta > 0, ValueError, "huber_loss: expected delta > 0, got ", delta);
  Tensor d = sub(input, target), ad = abs(d);
  Tensor loss = where(lt(ad, delta), mul(square(d), 0.5), mul(sub(ad, 0.5 * delta), delta));
  return reduce(loss, reduction);
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, double beta) {
  if (amp::detail::autocast_active({&input, &target}))
    return amp::detail::run_autocast(
        amp::detail::CastPolicy::Float32, {input, target},
        [&](const auto& t) { return smooth_l1_loss(t[0], t[1], reduction, beta); });
  check_pointwise(input, target, "smooth_l1_loss");
  ANVIL_CHECK(beta >= 0, ValueError, "smooth_l1_loss: expected beta >= 0, got ", beta);
  if (beta == 0) return reduce(abs(sub(input, target)), reduction);
  Tensor d = sub(input, target), ad = abs(d);
  Tensor loss = where(lt(ad, beta), mul(square(d), 0.5 / beta), sub(ad, 0.5 * beta));
  return reduce(loss, reduction);
}

Tensor soft_cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight,
                          Reduction reduction, double label_smoothing) {
  if (amp::detail::autocast_active({&logits, &target, &weight}))
    return amp::detail::run_autocast(
        amp::detail::CastPolicy::Float32, {logits, target, weight}, [&](const auto& t) {
          return soft_cross_entropy(t[0], t[1], t[2], reduction, label_smoothing);
        });
  const char* op = "soft_cross_entropy";
  ops::check_defined(logits, op, "input");
  ops::check_defined(target, op, "target");
  ops::check_same_device({logits, target, weight}, op);
  ops::check_floating(logits, op, "input");
  ANVIL_CHECK(is_floating(target.dtype()), DTypeError, op,
              ": expected a floating-point target of class probabilities (use cross_entropy for "
              "class indices), got ",
              dtype_name(target.dtype()));
  const int64_t c = check_classes(logits, weight, op);
  ANVIL_CHECK(target.shape() == logits.shape(), ShapeError, op,
              ": expected target probabilities of the input's shape ", to_string(logits.shape()),
              ", got ", to_string(target.shape()));
  ANVIL_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, ValueError, op,
              ": expected label_smoothing in [0, 1], got ", label_smoothing);
  const int64_t cd = logits.dim() == 1 ? 0 : 1;
  Tensor t = target;
  if (label_smoothing > 0) t = add(mul(t, 1.0 - label_smoothing), label_smoothing / double(c));
  Tensor prod = mul(log_softmax(logits, cd), t);
  if (weight.defined()) prod = mul(prod, class_weight_view(weight, logits));
  return reduce(neg(sum(prod, {cd})), reduction);
}

}  // namespace anvil
