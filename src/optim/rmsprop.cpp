#include "anvil/optim/rmsprop.h"

#include "anvil/core/error.h"
#include "anvil/ops/creation.h"
#include "inplace.h"

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

void RMSprop::update(const Options& o, Tensor& p, const Tensor& grad, StateDict& state) {
  const double lr = o.at("lr"), alpha = o.at("alpha"), eps = o.at("eps");
  const double momentum = o.at("momentum");
  const bool centered = o.at("centered") != 0;
  if (!state.count("square_avg")) {
    state["square_avg"] = zeros_like(p);
    if (momentum > 0) state["momentum_buffer"] = zeros_like(p);
    if (centered) state["grad_avg"] = zeros_like(p);
  }
  increment_step(state);
  Tensor g = impl::effective_grad(p, grad, o.at("weight_decay"), o.at("maximize") != 0);
  Tensor& v = state["square_avg"];
  mul_(v, alpha);
  impl::addcmul_(v, g, g, 1 - alpha);
  Tensor avg;
  if (centered) {
    Tensor& a = state["grad_avg"];
    impl::lerp_(a, g, 1 - alpha);
    avg = sqrt(sub(v, mul(a, a)));
  } else {
    avg = sqrt(v);
  }
  avg = add(avg, eps);
  if (momentum > 0) {
    Tensor& b = state["momentum_buffer"];
    mul_(b, momentum);
    impl::addcdiv_(b, g, avg, 1.0);
    add_(p, b, -lr);
  } else {
    impl::addcdiv_(p, g, avg, -lr);
  }
}

}  // namespace anvil::optim
