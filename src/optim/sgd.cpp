#include "anvil/optim/sgd.h"

#include "anvil/core/error.h"
#include "inplace.h"

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

void SGD::update(const Options& o, Tensor& p, const Tensor& grad, StateDict& state) {
  const double momentum = o.at("momentum"), lr = o.at("lr");
  Tensor g = impl::effective_grad(p, grad, o.at("weight_decay"), o.at("maximize") != 0);
  if (momentum != 0) {
    auto it = state.find("momentum_buffer");
    if (it == state.end()) {
      it = state.emplace("momentum_buffer", g.clone()).first;
    } else {
      mul_(it->second, momentum);
      add_(it->second, g, 1 - o.at("dampening"));
    }
    g = o.at("nesterov") != 0 ? add(g, it->second, momentum) : it->second;
  }
  add_(p, g, -lr);
}

}  // namespace anvil::optim
