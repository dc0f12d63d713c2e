#include "anvil/optim/adam.h"

#include "anvil/core/error.h"
#include "check_options.h"
#include "fused_step.h"

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

void Adam::update_group(size_t group, const std::vector<Tensor>& params) {
  const Options& o = groups_[group].options;
  backend::OptimHyper h;
  h.kind = backend::OptimKind::Adam;
  h.beta1 = o.at("beta1");
  h.beta2 = o.at("beta2");
  h.eps = o.at("eps");
  h.weight_decay = o.at("weight_decay");
  h.amsgrad = fused::flag(o, "amsgrad");
  h.maximize = fused::flag(o, "maximize");
  h.decoupled = decoupled_;
  fused::FusedStep step(name_, h,
                        {"exp_avg", "exp_avg_sq", h.amsgrad ? "max_exp_avg_sq" : nullptr});
  for (const Tensor& p : params) step.add(p, mutable_state(p));
  step.run([&](Device d) { return lr_tensor(group, d); });
}

}  // namespace anvil::optim
