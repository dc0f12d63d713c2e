// In-place updates the optimizers share, composed from anvil ops (PyTorch's addcmul_,
// addcdiv_ and lerp_). Call under NoGradGuard.
#pragma once
#include <string>

#include "anvil/ops/elementwise.h"
#include "anvil/optim/optimizer.h"

namespace anvil::optim::impl {

// a += value * b * c
inline Tensor& addcmul_(Tensor& a, const Tensor& b, const Tensor& c, double value) {
  return add_(a, mul(b, c), value);
}
// a += value * b / c
inline Tensor& addcdiv_(Tensor& a, const Tensor& b, const Tensor& c, double value) {
  return add_(a, div(b, c), value);
}
// a += w * (b - a), as torch.lerp_ computes it for w < 0.5 (and from the other end otherwise).
inline Tensor& lerp_(Tensor& a, const Tensor& b, double w) {
  if (w < 0.5) return add_(a, sub(b, a), w);
  Tensor r = sub(b, mul(sub(b, a), 1.0 - w));
  a.copy_(r);
  return a;
}
// The gradient with weight decay folded in and the sign flipped for maximize.
inline Tensor effective_grad(const Tensor& param, const Tensor& grad, double weight_decay,
                             bool maximize) {
  Tensor g = maximize ? neg(grad) : grad;
  if (weight_decay != 0) g = add(g, param, weight_decay);
  return g;
}

}  // namespace anvil::optim::impl

namespace anvil::optim {
// lr, eps, weight_decay >= 0 and betas in [0, 1) (Adam, AdamW, NAdam); messages start with name.
void check_adam_options(const std::string& name, const Options& o);
}  // namespace anvil::optim
