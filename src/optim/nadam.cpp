#include "anvil/optim/nadam.h"

#include <cmath>

#include "anvil/core/error.h"
#include "anvil/ops/creation.h"
#include "inplace.h"

namespace anvil::optim {

NAdam::NAdam(std::vector<Tensor> params, NAdamOptions options)
    : NAdam(single_group(std::move(params)), options) {}

NAdam::NAdam(std::vector<ParamGroup> groups, NAdamOptions o)
    : Optimizer("NAdam", {{"lr", o.lr},
                          {"beta1", o.beta1},
                          {"beta2", o.beta2},
                          {"eps", o.eps},
                          {"weight_decay", o.weight_decay},
                          {"momentum_decay", o.momentum_decay},
                          {"decoupled_weight_decay", o.decoupled_weight_decay},
                          {"maximize", o.maximize}}) {
  init(std::move(groups));
}

void NAdam::validate(const Options& o) const {
  check_adam_options("NAdam", o);
  ANVIL_CHECK(o.at("momentum_decay") >= 0, ValueError,
              "NAdam: invalid momentum_decay value: expected momentum_decay >= 0, got ",
              o.at("momentum_decay"));
}

void NAdam::update(const Options& o, Tensor& p, const Tensor& grad, StateDict& state) {
  const double lr = o.at("lr"), beta1 = o.at("beta1"), beta2 = o.at("beta2"), eps = o.at("eps");
  const double wd = o.at("weight_decay"), momentum_decay = o.at("momentum_decay");
  if (!state.count("exp_avg")) {
    // PyTorch keeps mu_product as a float32 scalar tensor (its default scalar dtype).
    state["mu_product"] = scalar_tensor(1.0, kFloat32);
    state["exp_avg"] = zeros_like(p);
    state["exp_avg_sq"] = zeros_like(p);
  }
  const double step = increment_step(state);
  const double bias_correction2 = 1 - std::pow(beta2, step);
  Tensor g = o.at("maximize") != 0 ? neg(grad) : grad;
  if (wd != 0) {
    if (o.at("decoupled_weight_decay") != 0)
      mul_(p, 1 - lr * wd);
    else
      g = add(g, p, wd);
  }
  const double mu = beta1 * (1.0 - 0.5 * std::pow(0.96, step * momentum_decay));
  const double mu_next = beta1 * (1.0 - 0.5 * std::pow(0.96, (step + 1) * momentum_decay));
  Tensor& mu_product_t = state["mu_product"];
  mul_(mu_product_t, mu);
  const double mu_product = mu_product_t.item<double>();
  const double mu_product_next = mu_product * mu_next;
  Tensor& m = state["exp_avg"];
  Tensor& v = state["exp_avg_sq"];
  impl::lerp_(m, g, 1 - beta1);
  mul_(v, beta2);
  impl::addcmul_(v, g, g, 1 - beta2);
  Tensor denom = add(sqrt(div(v, bias_correction2)), eps);
  impl::addcdiv_(p, g, denom, -lr * (1.0 - mu) / (1.0 - mu_product));
  impl::addcdiv_(p, m, denom, -lr * mu_next / (1.0 - mu_product_next));
}

}  // namespace anvil::optim
