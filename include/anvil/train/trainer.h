// Trainer: fit / evaluate / predict over DataLoaders, with callbacks, gradient accumulation
// and a per-epoch history (Keras' Model.fit, written in PyTorch's terms).
//
//   train::Trainer trainer(model, optim::make_optimizer("adam", model->parameters(), 1e-3),
//                          nn::make_loss("cross_entropy"));
//   trainer.add_callback(std::make_shared<train::ProgressBar>());
//   train::History h = trainer.fit(train_loader, /*epochs=*/10, &test_loader);
//   double acc = trainer.evaluate(test_loader).at("accuracy");
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "anvil/amp/grad_scaler.h"
#include "anvil/data/dataloader.h"
#include "anvil/data/device_prefetcher.h"
#include "anvil/nn/losses.h"
#include "anvil/nn/module.h"
#include "anvil/optim/optimizer.h"
#include "anvil/train/callback.h"
#include "anvil/train/history.h"

namespace anvil::train {

struct TrainerOptions {
  Device device = kCPU;  // where the model and each batch live
  // Metrics reported by evaluate() and for the validation set during fit, by name:
  // "accuracy", "top5_accuracy", "precision", "recall", "f1" (macro), "roc_auc" for
  // classification; "mse", "rmse", "mae", "r2" for regression. Training epochs report the
  // loss and, for classification, a running accuracy. A sequence model's output [B, T, C]
  // against integer targets [B, T] (a language model's logits and next tokens) is scored per
  // token: both are flattened to [B * T, C] and [B * T] for the loss and the metrics, and the
  // logs add "perplexity" = exp(loss). The validation outputs are kept for the metrics only
  // when some are named (none: the loss and perplexity alone, in constant memory).
  std::vector<std::string> metrics = {"accuracy"};
  // Optimizer steps happen every `grad_accumulation` batches, with the summed gradients of
  // those batches scaled by 1/grad_accumulation (so the step sees their mean).
  int64_t grad_accumulation = 1;
  // Clip the global gradient norm before each step (0: off).
  double clip_grad_norm = 0;
  // On a CUDA device, after two warm-up steps per batch shape, run each training step as one
  // CUDA graph launch (see GraphedStep). Needs grad_accumulation == 1 and an optimizer other
  // than L-BFGS; otherwise, or when false (for debugging), steps run eagerly.
  bool cuda_graphs = true;
  // On a CUDA device, upload each batch on a copy stream while the step on the batch before
  // it runs (data::DevicePrefetcher; fit, evaluate and predict). False, for debugging: each
  // batch is uploaded on the compute stream as its step starts. The results are the same.
  bool prefetch_to_device = true;
  // Mixed precision: kBFloat16 or kFloat16 runs the forward pass and loss under amp::autocast
  // with that dtype (float32 master weights); float16 also scales the loss with an
  // amp::GradScaler, whose state goes into checkpoints. Unset: plain float32.
  std::optional<DType> mixed_precision = std::nullopt;
};

class GraphedStep;

class Trainer {
 public:
  // Throws ValueError for null pieces or grad_accumulation < 1, and for unknown metric names.
  Trainer(nn::ModulePtr model, std::shared_ptr<optim::Optimizer> optimizer,
          std::shared_ptr<nn::Loss> loss, TrainerOptions options = {});

  void add_callback(std::shared_ptr<Callback> cb) { callbacks_.push_back(std::move(cb)); }

  // Registers the LR scheduler the trainer steps (every epoch, or every optimizer step; a
  // ReduceLROnPlateau is stepped with `monitor`, see LRSchedulerCallback) and checkpoints. Its
  // callback runs before the others, so a checkpoint written at the end of an epoch holds the
  // scheduler as it is after that epoch's step. Throws ValueError for a null scheduler or when
  // one is already registered.
  void set_scheduler(std::shared_ptr<optim::LRScheduler> scheduler,
                     LRSchedulerCallback::Every every = LRSchedulerCallback::Every::Epoch,
                     std::string monitor = "val_loss");
  optim::LRScheduler* scheduler() { return scheduler_.get(); }
  // The model's architecture (a ModelBuilder JSON document) to store in checkpoints.
  void set_architecture(std::string json) { architecture_ = std::move(json); }

  // Writes a checkpoint (see anvil/io/checkpoint.h): model, optimizer, scheduler, the default
  // generators' states, epoch, global step, the training loader's epoch and the history.
  // Called from a callback's on_epoch_end, it includes the epoch being finished in the history;
  // called from on_step_end, it records the position inside the epoch and the epoch's running
  // sums, so that resuming continues with the next batch. Throws IOError naming the file.
  void save_checkpoint(const std::string& path) const;
  // Restores a checkpoint written by save_checkpoint into this trainer's model, optimizer and
  // scheduler (built the same way), and the generators, epoch, global step and history. The
  // next fit() continues from there: its first epoch is the saved epoch + 1, and the training
  // loader is set to the epoch it would have reached, so shuffling continues as in an
  // uninterrupted run. Train to N epochs in all with fit(train, N - epoch()), or
  // fit_to(train, N). The whole file is read and verified before anything changes: a damaged
  // file throws IOError and leaves the trainer as it was. A checkpoint that does not fit the
  // model, optimizer or scheduler throws ValueError.
  void load_checkpoint(const std::string& path);
  // fit() until `total_epochs` epochs are done in all (counting those of a loaded checkpoint).
  const History& fit_to(data::DataLoader& train, int64_t total_epochs,
                        data::DataLoader* validation = nullptr);

  // A regression target [N] meets a single-output model's [N, 1] as [N, 1].
  // Trains for `epochs` epochs over `train`, evaluating on `validation` after each epoch when
  // given (logged with a "val_" prefix). Returns the history so far (also history()).
  // Throws ValueError when the loss becomes NaN or infinite (naming epoch and step), and
  // ShapeError/DTypeError (with the batch's shape) when the model does not fit the data.
  const History& fit(data::DataLoader& train, int64_t epochs, data::DataLoader* validation = nullptr);
  // Mean loss and the configured metrics over `data`, in eval mode without gradients.
  Logs evaluate(data::DataLoader& data);
  // The model's outputs for every batch of `data`, concatenated (on the CPU).
  Tensor predict(data::DataLoader& data);
  // The model's outputs for `inputs` (first dim = samples), in batches of `batch_size`.
  Tensor predict(const Tensor& inputs, int64_t batch_size = 256);

  // Asks fit to stop after the current epoch (EarlyStopping uses it).
  void stop_training() { stop_ = true; }

  nn::Module& model() { return *model_; }
  optim::Optimizer& optimizer() { return *optimizer_; }
  nn::Loss& loss() { return *loss_; }
  const History& history() const { return history_; }
  const TrainerOptions& options() const { return options_; }
  // The graphed training step (null when steps run eagerly), for its statistics.
  const GraphedStep* graphed_step() const { return graphed_.get(); }
  // The loss scaler of float16 mixed precision (null otherwise).
  amp::GradScaler* grad_scaler() { return scaler_.get(); }
  int64_t epochs_planned() const { return epochs_planned_; }
  int64_t epoch() const { return epoch_; }
  // Total optimizer steps taken (across fit calls).
  int64_t global_step() const { return global_step_; }

 private:
  void run_callbacks(const std::function<void(Callback&)>& fn);
  // The batches of `loader` where the steps take them: on the device, uploaded one ahead,
  // with prefetch_to_device; as the loader makes them otherwise.
  data::DevicePrefetcher device_batches(data::DataLoader& loader) const;
  // The loss of one batch (and its share of the epoch's running loss and accuracy sums).
  Tensor forward_loss(const Tensor& x, const Tensor& y);
  // Backward of a loss (scaled when a GradScaler is in use).
  void backward(const Tensor& loss);
  // Clip, update (through the scaler, if any), clear the gradients.
  void optimizer_step();
  // Sets up the running sums and, where the step can be captured, the graphed step.
  void start_step_graphs();
  Logs compute_metrics(const Tensor& outputs, const Tensor& targets) const;

  nn::ModulePtr model_;
  std::shared_ptr<optim::Optimizer> optimizer_;
  std::shared_ptr<nn::Loss> loss_;
  TrainerOptions options_;
  std::vector<std::shared_ptr<Callback>> callbacks_;
  History history_;
  bool stop_ = false;
  int64_t epochs_planned_ = 0, epoch_ = 0, global_step_ = 0;
  std::shared_ptr<optim::LRScheduler> scheduler_;
  std::string architecture_;
  int64_t loader_epoch_ = 0;        // the training loader's epoch after the last epoch
  bool restore_loader_epoch_ = false;  // set by load_checkpoint, used by the next fit
  const Logs* current_logs_ = nullptr;  // the finishing epoch's logs, during on_epoch_end
  // The epoch's running loss (x samples) and correct-prediction sums, on the device, written
  // by every step (eager or replayed) and read only when a callback or the epoch's logs ask.
  Tensor loss_sum_, correct_sum_;
  bool classification_ = false;
  bool per_token_ = false;  // the last batch was scored per token (a sequence model's output)
  // The epoch in progress (for a checkpoint saved between its steps), and what a checkpoint
  // saved that way hands the next fit().
  bool in_epoch_ = false;
  int64_t pass_epoch_ = 0, epoch_batches_ = 0, epoch_samples_ = 0;
  int64_t resume_batches_ = 0, resume_samples_ = 0;
  StateDict resume_sums_;
  bool resume_classification_ = false;
  std::shared_ptr<GraphedStep> graphed_;
  std::unique_ptr<amp::GradScaler> scaler_;  // float16 mixed precision only
};

// The value of a named metric (see TrainerOptions::metrics) for model outputs and targets.
// Throws ValueError for an unknown name.
double compute_metric(const std::string& name, const Tensor& outputs, const Tensor& targets);
// Whether larger values of a logged quantity are better (accuracy, f1, auc, r2).
bool higher_is_better(const std::string& name);

}  // namespace anvil::train
