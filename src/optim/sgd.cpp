#include "anvil/optim/sgd.h"

#include "anvil/core/error.h"
#include "fused_step.h"

namespace anvil::optim {

namespace {
Options to_map(const SGDOptions& o) {
  return {{"lr", o.lr},
          {"momentum", o.momentum},
          {"dampening", o.dampening},
          {"weight_decay", o.weight_decay},
          {"nesterov", o.nesterov},
          {"maximize", o.maximize}};
}
}  // namespace

SGD::SGD(std::vector<Tensor> params, SGDOptions options)
    : SGD(single_group(std::move(params)), options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options) : Optimizer("SGD", to_map(options)) {
  init(std::move(groups));
}

void SGD::validate(const Options& o) const {
  ANVIL_CHECK(o.at("lr") >= 0, ValueError, "SGD: invalid learning rate: expected lr >= 0, got ",
              o.at("lr"));
  ANVIL_CHECK(o.at("momentum") >= 0, ValueError,
              "SGD: invalid momentum value: expected momentum >= 0, got ", o.at("momentum"));
  ANVIL_CHECK(o.at("weight_decay") >= 0, ValueError,
              "SGD: invalid weight_decay value: expected weight_decay >= 0, got ",
              o.at("weight_decay"));
  if (o.at("nesterov") != 0)
    ANVIL_CHECK(o.at("momentum") > 0 && o.at("dampening") == 0, ValueError,
                "SGD: Nesterov momentum requires a momentum and zero dampening, got momentum=",
                o.at("momentum"), ", dampening=", o.at("dampening"));
}

void SGD::update_group(size_t group, const std::vector<Tensor>& params) {
  const Options& o = groups_[group].options;
  backend::OptimHyper h;
  h.kind = backend::OptimKind::SGD;
  h.momentum = o.at("momentum");
  h.dampening = o.at("dampening");
  h.weight_decay = o.at("weight_decay");
  h.nesterov = fused::flag(o, "nesterov");
  h.maximize = fused::flag(o, "maximize");
  fused::FusedStep step(name_, h,
                        {h.momentum != 0 ? "momentum_buffer" : nullptr, nullptr, nullptr});
  for (const Tensor& p : params) step.add(p, mutable_state(p));
  step.run([&](Device d) { return lr_tensor(group, d); });
}

}  // namespace anvil::optim
