// Callbacks: hooks the Trainer calls around epochs and steps (Keras' callbacks).
#pragma once
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>

#include "anvil/optim/lr_scheduler.h"
#include "anvil/train/history.h"

namespace anvil::train {

class Trainer;

// What a training step reports. `loss` is read from the device only when a callback asks
// for it (needs_loss), so a step that nobody watches stays asynchronous.
struct StepInfo {
  int64_t epoch = 0;        // 1-based
  int64_t step = 0;         // optimizer steps so far in this epoch (1-based)
  int64_t steps = 0;        // optimizer steps in the epoch
  int64_t samples = 0;      // samples seen so far in this epoch
  double loss = 0;          // the mean loss of the epoch so far (when read)
  double accuracy = -1;     // running accuracy for classification (-1 when not computed)
  double elapsed_s = 0;     // since the epoch began
};

class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(Trainer&) {}
  virtual void on_train_end(Trainer&) {}
  virtual void on_epoch_begin(Trainer&, int64_t /*epoch*/) {}
  // `logs` holds the epoch's loss, metrics, validation results, lr and time; callbacks may
  // add entries, which go into the history.
  virtual void on_epoch_end(Trainer&, int64_t /*epoch*/, Logs& /*logs*/) {}
  virtual void on_step_end(Trainer&, const StepInfo&) {}
  // Whether on_step_end needs StepInfo::loss for this step (reading it costs a sync on a GPU).
  virtual bool needs_loss(const StepInfo&) const { return false; }
};

// The progress display. On a terminal: a bar redrawn in place (epoch, step, loss, accuracy,
// samples/s, ETA) about ten times a second. Otherwise one line per epoch.
class ProgressBar : public Callback {
 public:
  // tty: -1 detects whether `os` is a terminal (only std::cout/std::cerr can be), 0 or 1 forces.
  explicit ProgressBar(std::ostream& os, int tty = -1);
  ProgressBar();
  void on_train_begin(Trainer&) override;
  void on_epoch_begin(Trainer&, int64_t epoch) override;
  void on_step_end(Trainer&, const StepInfo& info) override;
  bool needs_loss(const StepInfo& info) const override;
  void on_epoch_end(Trainer&, int64_t epoch, Logs& logs) override;

 private:
  std::ostream& os_;
  bool tty_;
  int64_t epochs_ = 0;
  double last_draw_s_ = -1;
};

// Steps a learning-rate scheduler after every epoch (or every optimizer step). A
// ReduceLROnPlateau scheduler is stepped with the monitored value ("val_loss" by default,
// "loss" when there is no validation set).
class LRSchedulerCallback : public Callback {
 public:
  enum class Every { Epoch, Step };
  LRSchedulerCallback(std::shared_ptr<optim::LRScheduler> scheduler, Every every = Every::Epoch,
                      std::string monitor = "val_loss");
  void on_step_end(Trainer&, const StepInfo&) override;
  void on_epoch_end(Trainer&, int64_t epoch, Logs& logs) override;
  optim::LRScheduler& scheduler() { return *scheduler_; }

 private:
  std::shared_ptr<optim::LRScheduler> scheduler_;
  Every every_;
  std::string monitor_;
};

// Stops training when `monitor` has not improved by more than min_delta for `patience`
// epochs. mode "min", "max", or "auto" (max for names containing accuracy/f1/auc/r2, else min).
// With restore_best, the model's weights are set back to those of the best epoch at the end.
class EarlyStopping : public Callback {
 public:
  explicit EarlyStopping(std::string monitor = "val_loss", int64_t patience = 3,
                         double min_delta = 0.0, std::string mode = "auto",
                         bool restore_best = false);
  void on_train_begin(Trainer&) override;
  void on_epoch_end(Trainer&, int64_t epoch, Logs& logs) override;
  void on_train_end(Trainer&) override;
  int64_t stopped_epoch() const { return stopped_epoch_; }
  int64_t best_epoch() const { return best_epoch_; }

 private:
  std::string monitor_, mode_;
  int64_t patience_;
  double min_delta_;
  bool restore_best_;
  double best_ = 0;
  int64_t best_epoch_ = 0, wait_ = 0, stopped_epoch_ = 0;
  StateDict best_weights_;
};

// Calls `fn(trainer, epoch, logs)` every `every_epochs` epochs: the hook checkpoints use.
class EpochHook : public Callback {
 public:
  using Fn = std::function<void(Trainer&, int64_t, const Logs&)>;
  EpochHook(Fn fn, int64_t every_epochs = 1);
  void on_epoch_end(Trainer& t, int64_t epoch, Logs& logs) override;

 private:
  Fn fn_;
  int64_t every_;
};

// Writes the history after every epoch (CSV and/or JSON; empty path = skip).
class HistoryWriter : public Callback {
 public:
  HistoryWriter(std::string csv_path, std::string json_path);
  void on_epoch_end(Trainer& t, int64_t epoch, Logs& logs) override;

 private:
  std::string csv_, json_;
};

// Writes dir/checkpoint-epoch-N.safetensors (Trainer::save_checkpoint) every `every_epochs`
// epochs (0: never) and, after every_n_steps(S), dir/checkpoint-step-G.safetensors every S
// optimizer steps (G: the global step; such a checkpoint resumes in the middle of its epoch),
// deleting the oldest of those files beyond the newest `keep_last` (0 keeps all).
// With a `monitor` (e.g. "val_loss"), also keeps dir/best.safetensors: the checkpoint of the
// epoch with the best value so far (mode "min", "max", or "auto": max for names containing
// accuracy/f1/auc/r2/precision/recall). The best so far is taken from the trainer's history at
// the start of fit, so it carries over a resumed run. Creates `dir` when missing. Register it
// after other callbacks that add entries to the logs.
class CheckpointCallback : public Callback {
 public:
  explicit CheckpointCallback(std::string dir, int64_t every_epochs = 1, int64_t keep_last = 3,
                              std::string monitor = "", std::string mode = "auto");
  void on_train_begin(Trainer& t) override;
  void on_epoch_end(Trainer& t, int64_t epoch, Logs& logs) override;
  void on_step_end(Trainer& t, const StepInfo& info) override;
  // Also save every `steps` optimizer steps (0: off). Returns *this.
  CheckpointCallback& every_n_steps(int64_t steps);
  // dir/checkpoint-epoch-N.safetensors, dir/checkpoint-step-G.safetensors, dir/best.safetensors.
  std::string path_for_epoch(int64_t epoch) const;
  std::string path_for_step(int64_t global_step) const;
  std::string best_path() const;
  // The epoch of the best checkpoint so far (0: none yet).
  int64_t best_epoch() const { return best_epoch_; }

 private:
  void save_periodic(Trainer& t, const std::string& path);

  std::string dir_, monitor_, mode_;
  int64_t every_, keep_last_;
  int64_t every_steps_ = 0;
  double best_ = 0;
  int64_t best_epoch_ = 0;
};

// The newest periodic checkpoint in `dir` (checkpoint-epoch-N or checkpoint-step-G, by write
// time), or "" when there is none.
std::string latest_checkpoint(const std::string& dir);

}  // namespace anvil::train
