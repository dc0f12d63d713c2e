// Cuts the lr when a metric stops improving (torch.optim.lr_scheduler.ReduceLROnPlateau).
//
// step(metric) after each evaluation: the metric improves when it beats the best so far by
// the threshold (mode "min": below best * (1 - threshold) for threshold_mode "rel", below
// best - threshold for "abs"; "max" mirrors this). After more than `patience` epochs without
// improvement every group's lr becomes max(lr * factor, min_lr) (changes smaller than eps are
// skipped), then `cooldown` epochs pass before bad epochs count again.
#pragma once
#include <string>
#include <vector>

#include "anvil/optim/lr_scheduler.h"

namespace anvil::optim {

struct ReduceLROnPlateauOptions {
  std::string mode = "min";  // "min" or "max"
  double factor = 0.1;
  int64_t patience = 10;
  double threshold = 1e-4;
  std::string threshold_mode = "rel";  // "rel" or "abs"
  int64_t cooldown = 0;
  std::vector<double> min_lr = {0};  // one value for all groups, or one per group
  double eps = 1e-8;
};

// Throws ValueError for factor >= 1, an unknown mode or threshold_mode, or a min_lr list of
// the wrong length.
class ReduceLROnPlateau : public LRScheduler {
 public:
  explicit ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options = {});
  // The plateau scheduler needs the metric: step() throws ValueError.
  void step() override;
  void step(double metric);

  double best() const { return best_; }
  int64_t num_bad_epochs() const { return num_bad_epochs_; }
  int64_t cooldown_counter() const { return cooldown_counter_; }

  // Adds "best", "num_bad_epochs", "cooldown_counter" to the base keys.
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state_dict) override;

 protected:
  std::vector<double> get_lr() override { return group_values("lr"); }

 private:
  bool is_better(double a, double best) const;
  ReduceLROnPlateauOptions o_;
  std::vector<double> min_lrs_;
  double best_;
  int64_t num_bad_epochs_ = 0;
  int64_t cooldown_counter_ = 0;
};

}  // namespace anvil::optim
