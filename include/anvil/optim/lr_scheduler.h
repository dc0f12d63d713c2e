// Learning-rate schedulers, as torch.optim.lr_scheduler.
//
// A scheduler changes the "lr" of every parameter group of an optimizer. Like PyTorch's,
// constructing one performs the initial step (last_epoch goes from -1 to 0 and the epoch-0
// learning rate is set), and each step() afterwards advances last_epoch by one; call it after
// optimizer.step(). The recursions are PyTorch's (each step scales the group's current lr),
// so schedulers can be chained and an lr set from outside carries forward.
//
//   optim::SGD opt(params, {.lr = 0.1});
//   optim::StepLR sched(opt, /*step_size=*/30, /*gamma=*/0.1);
//   for (int epoch = 0; epoch < 100; ++epoch) { train(opt); sched.step(); }
//
// A scheduler keeps a reference to its optimizer, which must outlive it. Constructing with
// last_epoch >= 0 resumes a schedule and needs "initial_lr" in every group (put there by the
// first scheduler and carried by the optimizer's state dict); otherwise ValueError.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "anvil/core/state_dict.h"
#include "anvil/optim/optimizer.h"

namespace anvil::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Advances one epoch (or batch) and sets the groups' learning rates.
  virtual void step();
  // The learning rates, one per group, that the last step set.
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  Optimizer& optimizer() const { return opt_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }

  // "last_epoch", "_step_count", "base_lrs", "_last_lr" (and what a scheduler adds), with
  // PyTorch's names. The optimizer's own state dict carries the groups' learning rates.
  virtual StateDict state_dict() const;
  virtual void load_state_dict(const StateDict& state_dict);

 protected:
  // Records "initial_lr" in each group (last_epoch == -1) or checks that it is there.
  LRScheduler(Optimizer& optimizer, int64_t last_epoch);
  struct NoInitialLr {};
  LRScheduler(Optimizer& optimizer, NoInitialLr);  // for ReduceLROnPlateau

  // Concrete schedulers call this at the end of their constructor: PyTorch's _initial_step.
  void initial_step();
  // The next learning rates from the current ones (PyTorch's get_lr).
  virtual std::vector<double> get_lr() = 0;
  // The learning rates at last_epoch from base_lrs (PyTorch's _get_closed_form_lr), where one
  // exists; used by SequentialLR when it hands over to the next scheduler.
  virtual std::optional<std::vector<double>> closed_form_lr() const { return std::nullopt; }
  // Sets last_epoch (next one, or `epoch`) and the learning rates.
  void update_lr(std::optional<int64_t> epoch = std::nullopt);
  std::vector<double> group_values(const std::string& key) const;

  Optimizer& opt_;
  std::vector<double> base_lrs_;
  std::vector<double> last_lr_;
  int64_t last_epoch_ = -1;
  int64_t step_count_ = 0;
  bool is_initial_ = false;

  friend class SequentialLR;
};

// Multiplies the lr by gamma every step_size epochs. Throws ValueError for step_size < 1.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1, int64_t last_epoch = -1);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;

 private:
  int64_t step_size_;
  double gamma_;
};

// Multiplies the lr by gamma at each milestone (an epoch listed k times multiplies by gamma^k).
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1,
              int64_t last_epoch = -1);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;

 private:
  std::vector<int64_t> milestones_;  // sorted
  double gamma_;
};

// Multiplies the lr by `factor` for the first total_iters epochs, then restores it. With
// factor 1 it never changes the lr (a no-op scheduler). Throws ValueError unless 0 <= factor <= 1.
class ConstantLR : public LRScheduler {
 public:
  explicit ConstantLR(Optimizer& optimizer, double factor = 1.0 / 3, int64_t total_iters = 5,
                      int64_t last_epoch = -1);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;

 private:
  double factor_;
  int64_t total_iters_;
};

// A scheduler that never changes the learning rate, for code that always steps one.
class NoOpLR : public ConstantLR {
 public:
  explicit NoOpLR(Optimizer& optimizer) : ConstantLR(optimizer, 1.0, 0) {}
};

// Linear warm-up (or decay): the lr factor goes from start_factor to end_factor over
// total_iters epochs, then stays. Throws ValueError unless 0 < start_factor <= 1 and
// 0 <= end_factor <= 1.
class LinearLR : public LRScheduler {
 public:
  explicit LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0,
                    int64_t total_iters = 5, int64_t last_epoch = -1);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;

 private:
  double start_factor_, end_factor_;
  int64_t total_iters_;
};

// Multiplies the lr by gamma every epoch.
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma, int64_t last_epoch = -1);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;

 private:
  double gamma_;
};

// Cosine annealing from the base lr down to eta_min over T_max epochs (and back up over the
// next T_max, as PyTorch's recursion does): eta_min + (base - eta_min)(1 + cos(pi t / T_max)) / 2.
// Throws ValueError for T_max < 1.
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0,
                    int64_t last_epoch = -1);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;

 private:
  int64_t T_max_;
  double eta_min_;
};

// Runs `schedulers` one after another, switching at the milestones (epochs); e.g. LinearLR
// warm-up for 5 epochs, then CosineAnnealingLR: SequentialLR(opt, {warmup, cosine}, {5}).
// The schedulers must drive `optimizer`; construct them, then this (which restarts them as
// PyTorch does). Throws ValueError for an empty list, milestones.size() != schedulers.size() - 1,
// a scheduler of another optimizer, or a ReduceLROnPlateau.
class SequentialLR : public LRScheduler {
 public:
  SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
               std::vector<int64_t> milestones, int64_t last_epoch = -1);
  void step() override;
  // Adds "_schedulers.<i>.<key>" for each scheduler's state.
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state_dict) override;

 protected:
  std::vector<double> get_lr() override { return group_values("lr"); }

 private:
  static void recursive_undo(LRScheduler& s);
  std::vector<std::shared_ptr<LRScheduler>> schedulers_;
  std::vector<int64_t> milestones_;
};

}  // namespace anvil::optim
