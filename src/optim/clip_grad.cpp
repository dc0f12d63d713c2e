#include "anvil/optim/clip_grad.h"

#include <cmath>

#include "anvil/autograd/grad_mode.h"
#include "anvil/core/error.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/join.h"
#include "anvil/ops/reduction.h"

namespace anvil::optim {

namespace {
Tensor norm(const Tensor& g, double p) {
  if (std::isinf(p)) return max(abs(g));
  if (p == 2) return sqrt(sum(mul(g, g)));
  if (p == 1) return sum(abs(g));
  return pow(sum(pow(abs(g), p)), 1.0 / p);
}
}  // namespace

Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  ANVIL_CHECK(norm_type > 0, ValueError,
              "clip_grad_norm_: expected norm_type > 0 (or INFINITY), got ", norm_type);
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return scalar_tensor(0.0);
  std::vector<Tensor> norms;
  for (const auto& g : grads) norms.push_back(norm(g, norm_type));
  Tensor total = norm(stack(norms), norm_type);
  if (error_if_nonfinite) {
    const double v = total.item<double>();
    ANVIL_CHECK(std::isfinite(v), ValueError, "clip_grad_norm_: the total norm of order ",
                norm_type, " of the gradients is ", v,
                ", so they cannot be clipped (pass error_if_nonfinite = false to clip anyway)");
  }
  // The coefficient stays on the device: no host round trip.
  Tensor coef = clamp_max(div(full_like(total, max_norm), add(total, 1e-6)), 1.0);
  for (auto& g : grads) mul_(g, coef.to(g.dtype()));
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  ANVIL_CHECK(clip_value >= 0, ValueError, "clip_grad_value_: expected clip_value >= 0, got ",
              clip_value);
  NoGradGuard no_grad;
  for (const auto& p : params)
    if (p.grad().defined()) p.grad().copy_(clamp(p.grad(), -clip_value, clip_value));
}

}  // namespace anvil::optim
