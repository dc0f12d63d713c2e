#include "anvil/optim/one_cycle_lr.h"

#include <cmath>
#include <numbers>

#include "anvil/core/error.h"

namespace anvil::optim {

namespace {
// Checks the arguments and writes the schedule's values into the groups before the base
// constructor records initial_lr from them.
Optimizer& prepare(Optimizer& opt, const std::vector<double>& max_lr, int64_t total_steps,
                   const OneCycleLROptions& o) {
  ANVIL_CHECK(total_steps >= 1, ValueError, "OneCycleLR: expected total_steps >= 1, got ",
              total_steps);
  ANVIL_CHECK(o.pct_start >= 0 && o.pct_start <= 1, ValueError,
              "OneCycleLR: expected pct_start in [0, 1], got ", o.pct_start);
  ANVIL_CHECK(o.anneal_strategy == "cos" || o.anneal_strategy == "linear", ValueError,
              "OneCycleLR: anneal_strategy must be \"cos\" or \"linear\", got \"",
              o.anneal_strategy, "\"");
  auto& groups = opt.param_groups();
  ANVIL_CHECK(max_lr.size() == 1 || max_lr.size() == groups.size(), ValueError,
              "OneCycleLR: expected 1 or ", groups.size(), " max_lr values, got ", max_lr.size());
  std::string key;
  if (o.cycle_momentum) {
    const auto& d = opt.defaults();
    ANVIL_CHECK(d.count("momentum") || d.count("beta1"), ValueError,
                "OneCycleLR: cycle_momentum needs an optimizer with momentum or beta1; ",
                opt.name(), " has neither");
    key = d.count("beta1") ? "beta1" : "momentum";
  }
  if (o.last_epoch == -1)
    for (size_t i = 0; i < groups.size(); ++i) {
      auto& g = groups[i].options;
      const double m = max_lr.size() == 1 ? max_lr[0] : max_lr[i];
      g["initial_lr"] = m / o.div_factor;
      g["max_lr"] = m;
      g["min_lr"] = g["initial_lr"] / o.final_div_factor;
      if (!key.empty()) {
        g[key] = o.max_momentum;
        g["max_momentum"] = o.max_momentum;
        g["base_momentum"] = o.base_momentum;
      }
    }
  return opt;
}
}  // namespace

OneCycleLR::OneCycleLR(Optimizer& optimizer, std::vector<double> max_lr, int64_t total_steps,
                       OneCycleLROptions options)
    : LRScheduler(prepare(optimizer, max_lr, total_steps, options), options.last_epoch),
      total_steps_(total_steps),
      o_(std::move(options)) {
  const double n = double(total_steps_);
  if (o_.three_phase)
    phases_ = {{o_.pct_start * n - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
               {2 * o_.pct_start * n - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"},
               {n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"}};
  else
    phases_ = {{o_.pct_start * n - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
               {n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"}};
  if (o_.cycle_momentum) momentum_key_ = opt_.defaults().count("beta1") ? "beta1" : "momentum";
  initial_step();
}

double OneCycleLR::anneal(double start, double end, double pct) const {
  if (o_.anneal_strategy == "cos")
    return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1);
  return (end - start) * pct + start;
}

std::vector<double> OneCycleLR::get_lr() {
  const int64_t step_num = last_epoch_;
  ANVIL_CHECK(step_num <= total_steps_, ValueError, "OneCycleLR: tried to step ", step_num,
              " times; the schedule has total_steps = ", total_steps_);
  std::vector<double> lrs;
  for (auto& group : opt_.param_groups()) {
    auto& g = group.options;
    double start_step = 0, lr = 0, momentum = 0;
    for (size_t i = 0; i < phases_.size(); ++i) {
      const Phase& ph = phases_[i];
      if (double(step_num) <= ph.end_step || i == phases_.size() - 1) {
        const double pct = (double(step_num) - start_step) / (ph.end_step - start_step);
        lr = anneal(g.at(ph.start_lr), g.at(ph.end_lr), pct);
        if (!momentum_key_.empty())
          momentum = anneal(g.at(ph.start_momentum), g.at(ph.end_momentum), pct);
        break;
      }
      start_step = ph.end_step;
    }
    lrs.push_back(lr);
    if (!momentum_key_.empty()) g[momentum_key_] = momentum;
  }
  return lrs;
}

}  // namespace anvil::optim
