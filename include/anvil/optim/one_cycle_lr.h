// The 1cycle policy (torch.optim.lr_scheduler.OneCycleLR): the lr rises from
// max_lr / div_factor to max_lr over the first pct_start of total_steps, then anneals to
// initial_lr / final_div_factor (with three_phase: back to the initial lr symmetrically, then
// down to the minimum). Momentum ("momentum", or "beta1" for Adam-style optimizers) moves
// inversely between max_momentum and base_momentum when cycle_momentum is set. Step it after
// every batch; stepping past total_steps throws ValueError.
//
// It stores "initial_lr", "max_lr", "min_lr" (and "max_momentum", "base_momentum") in each
// param group, as PyTorch does, so the optimizer's state dict carries the schedule.
#pragma once
#include <string>
#include <vector>

#include "anvil/optim/lr_scheduler.h"

namespace anvil::optim {

struct OneCycleLROptions {
  double pct_start = 0.3;
  std::string anneal_strategy = "cos";  // "cos" or "linear"
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  double div_factor = 25;
  double final_div_factor = 1e4;
  bool three_phase = false;
  int64_t last_epoch = -1;
};

// `max_lr` holds one value for all groups or one per group. Throws ValueError for
// total_steps < 1, pct_start outside [0, 1], an unknown anneal_strategy, a max_lr list of the
// wrong length, or cycle_momentum with an optimizer that has neither momentum nor beta1.
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, std::vector<double> max_lr, int64_t total_steps,
             OneCycleLROptions options = {});
  OneCycleLR(Optimizer& optimizer, double max_lr, int64_t total_steps,
             OneCycleLROptions options = {})
      : OneCycleLR(optimizer, std::vector<double>{max_lr}, total_steps, std::move(options)) {}

 protected:
  std::vector<double> get_lr() override;

 private:
  struct Phase {
    double end_step;
    const char *start_lr, *end_lr, *start_momentum, *end_momentum;
  };
  double anneal(double start, double end, double pct) const;
  int64_t total_steps_;
  OneCycleLROptions o_;
  std::vector<Phase> phases_;
  std::string momentum_key_;  // "momentum" or "beta1"; empty without cycle_momentum
};

}  // namespace anvil::optim
