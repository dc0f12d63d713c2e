#include "anvil/optim/adadelta.h"

#include "anvil/core/error.h"
#include "fused_step.h"

namespace anvil::optim {

Adadelta::Adadelta(std::vector<Tensor> params, AdadeltaOptions options)
    : Adadelta(single_group(std::move(params)), options) {}

Adadelta::Adadelta(std::vector<ParamGroup> groups, AdadeltaOptions o)
    : Optimizer("Adadelta", {{"lr", o.lr},
                             {"rho", o.rho},
                             {"eps", o.eps},
                             {"weight_decay", o.weight_decay},
                             {"maximize", o.maximize}}) {
  init(std::move(groups));
}

void Adadelta::validate(const Options& o) const {
  for (const char* k : {"lr", "eps", "weight_decay"})
    ANVIL_CHECK(o.at(k) >= 0, ValueError, "Adadelta: invalid ", k, " value: expected ", k,
                " >= 0, got ", o.at(k));
  ANVIL_CHECK(o.at("rho") >= 0 && o.at("rho") <= 1, ValueError,
              "Adadelta: invalid rho value: expected rho in [0, 1], got ", o.at("rho"));
}

void Adadelta::update_group(size_t group, const std::vector<Tensor>& params) {
  const Options& o = groups_[group].options;
  backend::OptimHyper h;
  h.kind = backend::OptimKind::Adadelta;
  h.rho = o.at("rho");
  h.eps = o.at("eps");
  h.weight_decay = o.at("weight_decay");
  h.maximize = fused::flag(o, "maximize");
  fused::FusedStep step(name_, h, {"square_avg", "acc_delta", nullptr});
  for (const Tensor& p : params) step.add(p, mutable_state(p));
  step.run([&](Device d) { return lr_tensor(group, d); });
}

}  // namespace anvil::optim
