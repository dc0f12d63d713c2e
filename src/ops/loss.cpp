// Losses: argument checks, layout and gradients around the fused cross-entropy kernels.
#include "anvil/ops/loss.h"

#include "amp/autocast_ops.h"
#include "anvil/autograd/node.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/reduction.h"
#include "backend/loss_kernels.h"
#include "ops/checks.h"

namespace anvil {

Reduction reduction_from_string(const std::string& s) {
  if (s == "none") return Reduction::None;
  if (s == "mean") return Reduction::Mean;
  if (s == "sum") return Reduction::Sum;
  throw ValueError("reduction_from_string: expected \"none\", \"mean\" or \"sum\", got \"" + s +
                   "\"");
}

namespace {

void check_cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight,
                         double label_smoothing) {
  const char* op = "cross_entropy";
  ops::check_defined(logits, op, "input");
  ops::check_defined(target, op, "target");
  ops::check_same_device({logits, target, weight}, op);
  ops::check_floating(logits, op, "input");
  ops::check_index(target, op, "target");
  ANVIL_CHECK(logits.dim() >= 1, ShapeError,
              "cross_entropy: expected input of shape [C], [N, C] or [N, C, d1, ...], got shape ",
              to_string(logits.shape()));
  const int64_t cd = logits.dim() == 1 ? 0 : 1;
  const int64_t c = logits.size(cd);
  ANVIL_CHECK(c > 0, ShapeError, "cross_entropy: expected at least one class, got input of shape ",
              to_string(logits.shape()));
  Shape expected = logits.shape();
  expected.erase(expected.begin() + cd);
  ANVIL_CHECK(target.shape() == expected, ShapeError, "cross_entropy: expected target of shape ",
              to_string(expected), " for input of shape ", to_string(logits.shape()), ", got ",
              to_string(target.shape()));
  if (weight.defined()) {
    ops::check_floating(weight, op, "weight");
    ANVIL_CHECK(weight.shape() == Shape{c}, ShapeError, "cross_entropy: expected weight of shape [",
                c, "] (one per class), got ", to_string(weight.shape()));
  }
  ANVIL_CHECK(label_smoothing >= 0.0 && label_smoothing < 1.0, ValueError,
              "cross_entropy: expected label_smoothing in [0, 1), got ", label_smoothing);
}

// The fused kernels on `logits` as they are; the loss comes out in `loss_dtype`.
Tensor fused_cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight,
                           Reduction reduction, int64_t ignore_index, double label_smoothing,
                           DType loss_dtype) {
  check_cross_entropy(logits, target, weight, label_smoothing);
  const int64_t cd = logits.dim() == 1 ? 0 : 1;
  const int64_t c = logits.size(cd), m = target.numel();
  // The kernels see rows [M, C]: move the class dim of [N, C, d1, ...] last.
  std::vector<int64_t> perm, inv(size_t(logits.dim()));
  for (int64_t i = 0; i < logits.dim(); ++i)
    if (i != cd) perm.push_back(i);
  perm.push_back(cd);
  for (size_t i = 0; i < perm.size(); ++i) inv[size_t(perm[i])] = int64_t(i);
  Shape moved;
  for (int64_t p : perm) moved.push_back(logits.size(p));

  backend::CrossEntropyArgs args{ignore_index, label_smoothing};
  const TensorOptions f64 = TensorOptions(kFloat64).device(logits.device());
  Tensor x, t, w, out, total_weight;
  {
    NoGradGuard no_grad;
    x = logits.permute(perm).contiguous().reshape({m, c}).detach();
    t = target.to(kInt64).contiguous().reshape({m});
    if (weight.defined()) w = weight.detach().to(kFloat64).contiguous();
    Tensor loss = Tensor::empty({m}, f64), row_weight = Tensor::empty({m}, f64);
    backend::cross_entropy_kernels[logits.device()](args, loss, row_weight, x, t, w);
    switch (reduction) {
      case Reduction::None:
        out = loss.reshape(target.shape());
        break;
      case Reduction::Sum:
        out = sum(loss);
        break;
      case Reduction::Mean:
        total_weight = sum(row_weight);
        out = div(sum(loss), total_weight);  // 0 / 0 = nan when every target is ignored
        break;
    }
    out = out.to(loss_dtype);
  }
  // Gradients flow to the logits only (not to the class weights).
  return autograd::record("CrossEntropyBackward", out, {logits},
                          [=](const Tensor& g) -> std::vector<Tensor> {
                            Tensor g64 = g.to(kFloat64), grad_loss;
                            switch (reduction) {
                              case Reduction::None:
                                grad_loss = g64.reshape({m});
                                break;
                              case Reduction::Sum:
                                grad_loss = g64.reshape({1}).expand({m});
                                break;
                              case Reduction::Mean:
                                grad_loss = div(g64, total_weight).reshape({1}).expand({m});
                                break;
                            }
                            Tensor gx = Tensor::empty({m, c}, x.options());
                            backend::cross_entropy_backward_kernels[x.device()](
                                args, gx, grad_loss.contiguous(), x, t, w);
                            return {gx.reshape(moved).permute(inv)};
                          });
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight,
                     Reduction reduction, int64_t ignore_index, double label_smoothing) {
  if (amp::detail::autocast_active({&logits, &target, &weight})) {
    // 16-bit logits go to the kernels as they are: those compute in float32 (or wider) either
    // way, so this gives the float32 loss, and the gradient rounded to the logits' dtype, that
    // casting the logits to float32 first would, without a float32 copy of the logits and of
    // their gradient (for a language model's [tokens, vocab] logits, most of the loss's time).
    if (logits.dtype() == kBFloat16 || logits.dtype() == kFloat16) {
      amp::detail::AutocastExclude exclude;
      return fused_cross_entropy(logits, target, weight, reduction, ignore_index,
                                 label_smoothing, kFloat32);
    }
    return amp::detail::run_autocast(
        amp::detail::CastPolicy::Float32, {logits, target, weight}, [&](const auto& t) {
          return cross_entropy(t[0], t[1], t[2], reduction, ignore_index, label_smoothing);
        });
  }
  return fused_cross_entropy(logits, target, weight, reduction, ignore_index, label_smoothing,
                             logits.dtype());
}

}  // namespace anvil
