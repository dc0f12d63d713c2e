// Pieces of `anvil train` that the classifier/regressor runs (train_command.cpp) and the
// language-model runs (lm_train_command.cpp) share.
#pragma once
#include <memory>
#include <string>

#include "anvil/anvil.h"
#include "tools/commands.h"

namespace anvil::tools {

// The --scheduler named in `a` over a.epochs epochs of `steps_per_epoch` optimizer steps (null
// for "none"). Throws ValueError for an unknown name.
std::shared_ptr<optim::LRScheduler> make_scheduler(const TrainArgs& a, optim::Optimizer& opt,
                                                   int64_t steps_per_epoch);

// The arguments of the run in `dir` (its run.json), for --resume. The device, --quiet and,
// when given, --epochs come from the command line.
TrainArgs args_of_run(const std::string& dir, const TrainArgs& cmdline, bool epochs_given);

// Overwrites the run's checkpoint every `every` optimizer steps, so that --resume continues
// from the middle of an epoch.
class StepCheckpoint : public train::Callback {
 public:
  StepCheckpoint(std::string path, int64_t every) : path_(std::move(path)), every_(every) {}
  void on_step_end(train::Trainer& t, const train::StepInfo&) override {
    if (t.global_step() % every_ == 0) t.save_checkpoint(path_);
  }

 private:
  std::string path_;
  int64_t every_;
};

}  // namespace anvil::tools
