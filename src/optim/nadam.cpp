#include "anvil/optim/nadam.h"

#include "anvil/core/error.h"
#include "check_options.h"
#include "fused_step.h"

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

void NAdam::update_group(size_t group, const std::vector<Tensor>& params) {
  const Options& o = groups_[group].options;
  backend::OptimHyper h;
  h.kind = backend::OptimKind::NAdam;
  h.beta1 = o.at("beta1");
  h.beta2 = o.at("beta2");
  h.eps = o.at("eps");
  h.weight_decay = o.at("weight_decay");
  h.momentum_decay = o.at("momentum_decay");
  h.decoupled = fused::flag(o, "decoupled_weight_decay");
  h.maximize = fused::flag(o, "maximize");
  // State: "step", "mu_product" (float32, as PyTorch keeps it), "exp_avg", "exp_avg_sq".
  fused::FusedStep step(name_, h, {"exp_avg", "exp_avg_sq", nullptr});
  for (const Tensor& p : params) step.add(p, mutable_state(p));
  step.run([&](Device d) { return lr_tensor(group, d); });
}

}  // namespace anvil::optim
