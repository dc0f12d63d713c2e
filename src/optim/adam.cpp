#include "anvil/optim/adam.h"

#include <cmath>

#include "anvil/core/error.h"
#include "anvil/ops/creation.h"
#include "inplace.h"

namespace anvil::optim {

namespace {
template <class O>
Options to_map(const O& o) {
  return {{"lr", o.lr},
          {"beta1", o.beta1},
          {"beta2", o.beta2},
          {"eps", o.eps},
          {"weight_decay", o.weight_decay},
          {"amsgrad", o.amsgrad},
          {"maximize", o.maximize}};
}
}  // namespace

// Shared checks of the Adam family (also used by NAdam).
void check_adam_options(const std::string& name, const Options& o) {
  ANVIL_CHECK(o.at("lr") >= 0, ValueError, name, ": invalid learning rate: expected lr >= 0, got ",
              o.at("lr"));
  ANVIL_CHECK(o.at("eps") >= 0, ValueError, name,
              ": invalid epsilon value: expected eps >= 0, got ", o.at("eps"));
  ANVIL_CHECK(o.at("beta1") >= 0 && o.at("beta1") < 1, ValueError, name,
              ": invalid beta parameter at index 0: expected beta1 in [0, 1), got ", o.at("beta1"));
  ANVIL_CHECK(o.at("beta2") >= 0 && o.at("beta2") < 1, ValueError, name,
              ": invalid beta parameter at index 1: expected beta2 in [0, 1), got ", o.at("beta2"));
  ANVIL_CHECK(o.at("weight_decay") >= 0, ValueError, name,
              ": invalid weight_decay value: expected weight_decay >= 0, got ",
              o.at("weight_decay"));
}

Adam::Adam(std::string name, Options defaults, bool decoupled)
    : Optimizer(std::move(name), std::move(defaults)), decoupled_(decoupled) {}

Adam::Adam(std::vector<Tensor> params, AdamOptions options)
    : Adam(single_group(std::move(params)), options) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options)
    : Optimizer("Adam", to_map(options)) {
  init(std::move(groups));
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options)
    : AdamW(single_group(std::move(params)), options) {}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : Adam("AdamW", to_map(options), true) {
  init(std::move(groups));
}

void Adam::validate(const Options& o) const { check_adam_options(name_, o); }

void Adam::update(const Options& o, Tensor& p, const Tensor& grad, StateDict& state) {
  const double lr = o.at("lr"), beta1 = o.at("beta1"), beta2 = o.at("beta2"), eps = o.at("eps");
  const double wd = o.at("weight_decay");
  const bool amsgrad = o.at("amsgrad") != 0;
  if (!state.count("exp_avg")) {
    state["exp_avg"] = zeros_like(p);
    state["exp_avg_sq"] = zeros_like(p);
    if (amsgrad) state["max_exp_avg_sq"] = zeros_like(p);
  }
  const double step = increment_step(state);
  Tensor g = o.at("maximize") != 0 ? neg(grad) : grad;
  if (wd != 0) {
    if (decoupled_)
      mul_(p, 1 - lr * wd);
    else
      g = add(g, p, wd);
  }
  Tensor& m = state["exp_avg"];
  Tensor& v = state["exp_avg_sq"];
  impl::lerp_(m, g, 1 - beta1);
  mul_(v, beta2);
  impl::addcmul_(v, g, g, 1 - beta2);
  const double bias_correction1 = 1 - std::pow(beta1, step);
  const double bias_correction2 = 1 - std::pow(beta2, step);
  const double step_size = lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  Tensor denom;
  if (amsgrad) {
    auto it = state.find("max_exp_avg_sq");
    if (it == state.end()) it = state.emplace("max_exp_avg_sq", zeros_like(p)).first;
    it->second.copy_(maximum(it->second, v));
    denom = add(div(sqrt(it->second), bias_correction2_sqrt), eps);
  } else {
    denom = add(div(sqrt(v), bias_correction2_sqrt), eps);
  }
  impl::addcdiv_(p, m, denom, -step_size);
}

}  // namespace anvil::optim
