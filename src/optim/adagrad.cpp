#include "anvil/optim/adagrad.h"

#include "anvil/core/error.h"
#include "anvil/ops/creation.h"
#include "fused_step.h"

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
  // As in PyTorch, the state exists from the start (on the parameter's device).
  for (const auto& g : groups_)
    for (const auto& p : g.params) {
      StateDict& s = mutable_state(p);
      s["step"] = zeros({}, TensorOptions(kFloat32).device(p.device()));
      s["sum"] = full(p.shape(), g.options.at("initial_accumulator_value"),
                      TensorOptions(backend::optim_state_dtype(p.dtype())).device(p.device()));
    }
}

void Adagrad::validate(const Options& o) const {
  for (const char* k : {"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"})
    ANVIL_CHECK(o.at(k) >= 0, ValueError, "Adagrad: invalid ", k, " value: expected ", k,
                " >= 0, got ", o.at(k));
}

void Adagrad::update_group(size_t group, const std::vector<Tensor>& params) {
  const Options& o = groups_[group].options;
  backend::OptimHyper h;
  h.kind = backend::OptimKind::Adagrad;
  h.lr_decay = o.at("lr_decay");
  h.eps = o.at("eps");
  h.weight_decay = o.at("weight_decay");
  h.maximize = fused::flag(o, "maximize");
  fused::FusedStep step(name_, h, {"sum", nullptr, nullptr});
  step.initial_value = o.at("initial_accumulator_value");  // for parameters added later
  for (const Tensor& p : params) step.add(p, mutable_state(p));
  step.run([&](Device d) { return lr_tensor(group, d); });
}

}  // namespace anvil::optim
