#include "anvil/optim/rmsprop.h"

#include "anvil/core/error.h"
#include "fused_step.h"

namespace anvil::optim {

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions options)
    : RMSprop(single_group(std::move(params)), options) {}

RMSprop::RMSprop(std::vector<ParamGroup> groups, RMSpropOptions o)
    : Optimizer("RMSprop", {{"lr", o.lr},
                            {"alpha", o.alpha},
                            {"eps", o.eps},
                            {"weight_decay", o.weight_decay},
                            {"momentum", o.momentum},
                            {"centered", o.centered},
                            {"maximize", o.maximize}}) {
  init(std::move(groups));
}

void RMSprop::validate(const Options& o) const {
  for (const char* k : {"lr", "eps", "momentum", "weight_decay", "alpha"})
    ANVIL_CHECK(o.at(k) >= 0, ValueError, "RMSprop: invalid ", k, " value: expected ", k,
                " >= 0, got ", o.at(k));
}

void RMSprop::update_group(size_t group, const std::vector<Tensor>& params) {
  const Options& o = groups_[group].options;
  backend::OptimHyper h;
  h.kind = backend::OptimKind::RMSprop;
  h.alpha = o.at("alpha");
  h.eps = o.at("eps");
  h.weight_decay = o.at("weight_decay");
  h.momentum = o.at("momentum");
  h.centered = fused::flag(o, "centered");
  h.maximize = fused::flag(o, "maximize");
  fused::FusedStep step(name_, h,
                        {"square_avg", h.momentum > 0 ? "momentum_buffer" : nullptr,
                         h.centered ? "grad_avg" : nullptr});
  for (const Tensor& p : params) step.add(p, mutable_state(p));
  step.run([&](Device d) { return lr_tensor(group, d); });
}

}  // namespace anvil::optim
