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

// The --optimizer over `params`, with --weight-decay set in every group when given.
std::shared_ptr<optim::Optimizer> make_run_optimizer(const TrainArgs& a,
                                                     const std::vector<Tensor>& params);

// The Trainer's options from --device, --grad-accum, --clip-grad-norm and --precision (metrics
// are the caller's). Throws ValueError for a precision other than fp32, bf16 and fp16.
train::TrainerOptions run_trainer_options(const TrainArgs& a);

// Hands the trainer the --scheduler, stepped per epoch (per step for onecycle), over the
// length the run started with (a.schedule_epochs).
void set_run_scheduler(train::Trainer& trainer, const TrainArgs& a, optim::Optimizer& opt,
                       int64_t batches_per_epoch);

// run.json: the arguments args_of_run reads back, with `data` describing the data.
nlohmann::json run_json(const TrainArgs& a, const std::string& loss, nlohmann::json data);

// The callbacks every run has: progress (unless --quiet), history files, and the checkpoint at
// `ckpt` after every epoch and every --checkpoint-every-steps steps.
void add_run_callbacks(train::Trainer& trainer, const TrainArgs& a, const std::string& ckpt);

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
