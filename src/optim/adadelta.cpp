#include "anvil/optim/adadelta.h"

#include "anvil/core/error.h"
#include "anvil/ops/creation.h"
#include "inplace.h"

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

void Adadelta::update(const Options& o, Tensor& p, const Tensor& grad, StateDict& state) {
  const double rho = o.at("rho"), eps = o.at("eps");
  if (!state.count("square_avg")) {
    state["square_avg"] = zeros_like(p);
    state["acc_delta"] = zeros_like(p);
  }
  increment_step(state);
  Tensor g = impl::effective_grad(p, grad, o.at("weight_decay"), o.at("maximize") != 0);
  Tensor& v = state["square_avg"];
  Tensor& u = state["acc_delta"];
  mul_(v, rho);
  impl::addcmul_(v, g, g, 1 - rho);
  Tensor std_ = sqrt(add(v, eps));
  Tensor delta = mul(div(sqrt(add(u, eps)), std_), g);
  mul_(u, rho);
  impl::addcmul_(u, delta, delta, 1 - rho);
  add_(p, delta, -o.at("lr"));
}

}  // namespace anvil::optim
