#include "anvil/optim/adagrad.h"

#include "anvil/core/error.h"
#include "anvil/ops/creation.h"
#include "inplace.h"

namespace anvil::optim {

Adagrad::Adagrad(std::vector<Tensor> params, AdagradOptions options)
    : Adagrad(single_group(std::move(params)), options) {}

Adagrad::Adagrad(std::vector<ParamGroup> groups, AdagradOptions o)
    : Optimizer("Adagrad", {{"lr", o.lr},
                            {"lr_decay", o.lr_decay},
                            {"weight_decay", o.weight_decay},
                            {"initial_accumulator_value", o.initial_accumulator_value},
                            {"eps", o.eps},
                            {"maximize", o.maximize}}) {
  init(std::move(groups));
  for (const auto& g : groups_)
    for (const auto& p : g.params) {
      StateDict& s = mutable_state(p);
      s["step"] = scalar_tensor(0.0, kFloat32);
      s["sum"] = full_like(p, g.options.at("initial_accumulator_value"));
    }
}

void Adagrad::validate(const Options& o) const {
  for (const char* k : {"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"})
    ANVIL_CHECK(o.at(k) >= 0, ValueError, "Adagrad: invalid ", k, " value: expected ", k,
                " >= 0, got ", o.at(k));
}

void Adagrad::update(const Options& o, Tensor& p, const Tensor& grad, StateDict& state) {
  if (!state.count("sum")) state["sum"] = full_like(p, o.at("initial_accumulator_value"));
  const double step = increment_step(state);
  Tensor g = impl::effective_grad(p, grad, o.at("weight_decay"), o.at("maximize") != 0);
  const double clr = o.at("lr") / (1 + (step - 1) * o.at("lr_decay"));
  Tensor& s = state["sum"];
  impl::addcmul_(s, g, g, 1.0);
  impl::addcdiv_(p, g, add(sqrt(s), o.at("eps")), -clr);
}

}  // namespace anvil::optim
