#include "anvil/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "anvil/amp/autocast.h"
#include "anvil/autograd/grad_mode.h"
#include "anvil/io/checkpoint.h"
#include "anvil/ops/activation.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/join.h"
#include "anvil/ops/reduction.h"
#include "anvil/optim/clip_grad.h"
#include "anvil/train/graphed_step.h"
#include "anvil/train/metrics.h"

namespace anvil::train {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Class scores [N, C] against integer labels [N]: the shape of a classification problem.
bool is_classification(const Tensor& out, const Tensor& target) {
  return out.dim() == 2 && target.dim() == 1 && is_integral(target.dtype()) &&
         out.size(0) == target.size(0);
}

// Scores for every position of a sequence [B, T, C] against integer targets [B, T], as a
// language model gives them: scored per token, both flattened to [B * T, C] and [B * T] (as
// Keras's sparse losses treat the class axis last), and reported with the perplexity.
bool is_per_token(const Tensor& out, const Tensor& target) {
  return out.dim() == 3 && target.dim() == 2 && is_integral(target.dtype()) &&
         out.size(0) == target.size(0) && out.size(1) == target.size(1);
}
Tensor tokens_flat(const Tensor& out) { return out.reshape({-1, out.size(-1)}); }

// A regression target [N] for a single-output model [N, 1] means one value per sample;
// give it the model's shape rather than let the loss refuse (or broadcast) it.
Tensor match_target(const Tensor& out, const Tensor& target) {
  if (out.dim() == 2 && out.size(1) == 1 && target.dim() == 1 && is_floating(target.dtype()) &&
      out.size(0) == target.size(0))
    return target.unsqueeze(1);
  return target;
}

const char* kMetricNames =
    "accuracy, top5_accuracy, precision, recall, f1, roc_auc, mse, rmse, mae, r2";

}  // namespace

bool higher_is_better(const std::string& name) {
  for (const char* k : {"accuracy", "f1", "auc", "r2", "precision", "recall"})
    if (name.find(k) != std::string::npos) return true;
  return false;
}

double compute_metric(const std::string& name, const Tensor& outputs, const Tensor& targets) {
  NoGradGuard no_grad;
  Tensor out = outputs.detach().cpu(), y = targets.detach().cpu();
  if (name == "accuracy" || name == "precision" || name == "recall" || name == "f1" ||
      name == "top5_accuracy" || name == "roc_auc") {
    ANVIL_CHECK(is_classification(out, y), ValueError, "metric ", name,
                ": expected class scores [N, C] and integer labels [N], got ",
                to_string(out.shape()), " and ", to_string(y.shape()), " (",
                dtype_name(y.dtype()), ")");
    Tensor pred = argmax(out, 1);
    if (name == "accuracy") return metrics::accuracy(y, pred);
    if (name == "precision") return metrics::precision(y, pred, "macro");
    if (name == "recall") return metrics::recall(y, pred, "macro");
    if (name == "f1") return metrics::f1(y, pred, "macro");
    if (name == "top5_accuracy") return metrics::top_k_accuracy(y, out, 5);
    Tensor prob = softmax(out.to(kFloat64), 1);
    if (out.size(1) == 2) return metrics::roc_auc(y, prob.select(1, 1));
    return metrics::roc_auc(y, prob, "macro");
  }
  if (name == "mse" || name == "rmse" || name == "mae" || name == "r2") {
    Tensor o = out.dim() == 2 && out.size(1) == 1 && y.dim() == 1 ? out.squeeze(1) : out;
    if (name == "mse") return metrics::mse(y, o);
    if (name == "rmse") return metrics::rmse(y, o);
    if (name == "mae") return metrics::mae(y, o);
    return metrics::r2(y, o);
  }
  throw ValueError("metric: unknown name '" + name + "' (expected one of " + kMetricNames + ")");
}

Trainer::Trainer(nn::ModulePtr model, std::shared_ptr<optim::Optimizer> optimizer,
                 std::shared_ptr<nn::Loss> loss, TrainerOptions options)
    : model_(std::move(model)),
      optimizer_(std::move(optimizer)),
      loss_(std::move(loss)),
      options_(std::move(options)) {
  ANVIL_CHECK(model_ && optimizer_ && loss_, ValueError,
              "Trainer: expected a model, an optimizer and a loss, got a null one");
  ANVIL_CHECK(options_.grad_accumulation >= 1, ValueError,
              "Trainer: grad_accumulation must be >= 1, got ", options_.grad_accumulation);
  for (const auto& m : options_.metrics) {
    bool known = false;
    for (const char* k : {"accuracy", "top5_accuracy", "precision", "recall", "f1", "roc_auc",
                          "mse", "rmse", "mae", "r2"})
      known = known || m == k;
    ANVIL_CHECK(known, ValueError, "Trainer: unknown metric '", m, "' (expected one of ",
                kMetricNames, ")");
  }
  if (options_.mixed_precision) {
    const DType d = *options_.mixed_precision;
    ANVIL_CHECK(d == kBFloat16 || d == kFloat16, DTypeError,
                "Trainer: mixed_precision must be bfloat16 or float16, got ", dtype_name(d));
    if (d == kFloat16)
      scaler_ = std::make_unique<amp::GradScaler>(options_.device.kind);
  }
  model_->to(options_.device);
}

void Trainer::run_callbacks(const std::function<void(Callback&)>& fn) {
  for (auto& cb : callbacks_) fn(*cb);
}

data::DevicePrefetcher Trainer::device_batches(data::DataLoader& loader) const {
  return data::DevicePrefetcher(loader, options_.prefetch_to_device ? options_.device : kCPU);
}

const History& Trainer::fit(data::DataLoader& train, int64_t epochs, data::DataLoader* validation) {
  ANVIL_CHECK(epochs >= 0, ValueError, "fit: epochs must be >= 0, got ", epochs);
  stop_ = false;
  epochs_planned_ = epoch_ + epochs;
  if (restore_loader_epoch_) {
    train.set_epoch(loader_epoch_);
    restore_loader_epoch_ = false;
  }
  const int64_t accum = options_.grad_accumulation;
  const int64_t batches = train.size();
  const int64_t steps = (batches + accum - 1) / accum;
  start_step_graphs();
  run_callbacks([&](Callback& c) { c.on_train_begin(*this); });
  for (int64_t e = 0; e < epochs && !stop_; ++e) {
    ++epoch_;
    model_->train();
    run_callbacks([&](Callback& c) { c.on_epoch_begin(*this, epoch_); });
    auto start = Clock::now();
    // Running sums stay on the device; they are read when someone needs them.
    loss_sum_.fill_(0);
    correct_sum_.fill_(0);
    int64_t samples = 0, batch_index = 0, step = 0;
    if (resume_batches_ > 0) {  // a checkpoint written in the middle of this epoch
      train.skip_next(resume_batches_);
      batch_index = resume_batches_;
      step = batch_index / accum;
      samples = resume_samples_;
      loss_sum_.copy_(resume_sums_.at("loss_sum"));
      correct_sum_.copy_(resume_sums_.at("correct_sum"));
      classification_ = resume_classification_;
      resume_batches_ = 0;
      resume_sums_.clear();
    }
    pass_epoch_ = train.epoch();
    in_epoch_ = true;
    optimizer_->zero_grad();
    // On CUDA each batch arrives on the device, its upload having overlapped the step before;
    // a replayed graph then copies it into its static inputs, device to device.
    for (data::Batch& b : device_batches(train)) {
      ++batch_index;
      const int64_t n = b.input.size(0);
      samples += n;
      epoch_batches_ = batch_index;
      epoch_samples_ = samples;
      if (graphed_) {
        optimizer_->prepare_step();
        (*graphed_)(b.input, b.target);
      } else {
        Tensor loss = forward_loss(b.input.to(options_.device), b.target.to(options_.device));
        backward(accum > 1 ? div(loss, double(accum)) : loss);
        if (batch_index % accum != 0 && batch_index != batches) continue;
        optimizer_step();
      }
      ++step;
      ++global_step_;
      StepInfo info{epoch_, step, steps, samples, 0, -1, seconds_since(start)};
      bool want = false;
      for (auto& cb : callbacks_) want = want || cb->needs_loss(info);
      if (want) {
        info.loss = loss_sum_.item<double>() / double(samples);
        ANVIL_CHECK(std::isfinite(info.loss), ValueError, "fit: the loss became ", info.loss,
                    " at epoch ", epoch_, " step ", step,
                    " (check the data for NaN/inf values and lower the learning rate)");
        if (classification_) info.accuracy = correct_sum_.item<double>() / double(samples);
      }
      run_callbacks([&](Callback& c) { c.on_step_end(*this, info); });
    }
    in_epoch_ = false;
    loader_epoch_ = train.epoch();
    Logs logs;
    double secs = seconds_since(start);
    if (samples > 0) {
      logs["loss"] = loss_sum_.item<double>() / double(samples);
      ANVIL_CHECK(std::isfinite(logs["loss"]), ValueError, "fit: the loss became ", logs["loss"],
                  " in epoch ", epoch_,
                  " (check the data for NaN/inf values and lower the learning rate)");
      if (classification_) logs["accuracy"] = correct_sum_.item<double>() / double(samples);
      if (per_token_) logs["perplexity"] = std::exp(logs["loss"]);
    }
    logs["lr"] = optimizer_->lr();
    logs["time_s"] = secs;
    logs["samples_per_s"] = secs > 0 ? double(samples) / secs : 0;
    if (validation) {
      for (auto& [k, v] : evaluate(*validation)) logs["val_" + k] = v;
    }
    current_logs_ = &logs;
    try {
      run_callbacks([&](Callback& c) { c.on_epoch_end(*this, epoch_, logs); });
    } catch (...) {
      current_logs_ = nullptr;
      throw;
    }
    current_logs_ = nullptr;
    history_.add(epoch_, logs);
  }
  run_callbacks([&](Callback& c) { c.on_train_end(*this); });
  return history_;
}

Tensor Trainer::forward_loss(const Tensor& x, const Tensor& y) {
  std::optional<amp::autocast> cast;
  if (options_.mixed_precision) cast.emplace(options_.device.kind, *options_.mixed_precision);
  Tensor out;
  try {
    out = (*model_)(x);
  } catch (const DeviceError&) {
    throw;  // not the batch's fault; GraphedStep falls back to eager steps on a capture refusal
  } catch (const Error& err) {
    throw ShapeError(detail::cat("fit: the model cannot take a batch of shape ",
                                 to_string(x.shape()), " (", dtype_name(x.dtype()),
                                 "): ", err.what()));
  }
  per_token_ = is_per_token(out, y);
  Tensor loss = per_token_ ? loss_->forward(tokens_flat(out), y.reshape({-1}))
                           : loss_->forward(out, match_target(out, y));
  NoGradGuard no_grad;
  add_(loss_sum_, mul(loss.detach().to(kFloat64), double(x.size(0))));
  classification_ = is_classification(out, y);
  if (classification_) add_(correct_sum_, sum(eq(argmax(out.detach(), 1), y)));
  return loss;
}

void Trainer::backward(const Tensor& loss) {
  (scaler_ ? scaler_->scale(loss) : loss).backward();
}

void Trainer::optimizer_step() {
  if (options_.clip_grad_norm > 0) {
    if (scaler_) scaler_->unscale_(*optimizer_);  // clip the true gradients
    optim::clip_grad_norm_(model_->parameters(), options_.clip_grad_norm);
  }
  if (scaler_) {
    scaler_->step(*optimizer_);  // skipped on the device when a gradient is inf/NaN
    scaler_->update();
  } else {
    optimizer_->step();
  }
  optimizer_->zero_grad();
}

void Trainer::start_step_graphs() {
  const TensorOptions on_device = TensorOptions(kFloat64).device(options_.device);
  if (!loss_sum_.defined() || loss_sum_.device() != options_.device) {
    loss_sum_ = zeros({}, on_device);
    correct_sum_ = zeros({}, on_device.dtype(kInt64));
    graphed_.reset();
  }
  // One optimizer step per batch, on a CUDA device, with an optimizer whose update keeps its
  // step-dependent values on the device (L-BFGS evaluates a closure on the host).
  const bool graphable = options_.cuda_graphs && options_.device.is_cuda() &&
                         options_.grad_accumulation == 1 && optimizer_->name() != "LBFGS";
  if (!graphable) {
    graphed_.reset();
    return;
  }
  if (graphed_) return;
  auto step = [this](const Tensor& x, const Tensor& y) {
    optimizer_->zero_grad();  // the step may rerun after a failed capture
    backward(forward_loss(x, y));
    optimizer_step();
  };
  // Whatever a captured step writes to: parameters, optimizer state, hyper-parameters.
  auto signature = [this] {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
    mix(optimizer_->hyper_version());
    mix(model_->is_training());
    for (const Tensor& p : model_->parameters()) {
      mix(reinterpret_cast<uintptr_t>(p.data_ptr()));
      for (const auto& [name, t] : optimizer_->state(p))
        if (t.defined()) mix(reinterpret_cast<uintptr_t>(t.data_ptr()));
    }
    for (const Tensor& t : model_->buffers()) mix(reinterpret_cast<uintptr_t>(t.data_ptr()));
    return h;
  };
  graphed_ = std::make_shared<GraphedStep>(options_.device, step, signature);
}

const History& Trainer::fit_to(data::DataLoader& train, int64_t total_epochs,
                               data::DataLoader* validation) {
  return fit(train, std::max<int64_t>(0, total_epochs - epoch_), validation);
}

void Trainer::set_scheduler(std::shared_ptr<optim::LRScheduler> scheduler,
                            LRSchedulerCallback::Every every, std::string monitor) {
  ANVIL_CHECK(scheduler != nullptr, ValueError, "Trainer::set_scheduler: the scheduler is null");
  ANVIL_CHECK(scheduler_ == nullptr, ValueError,
              "Trainer::set_scheduler: a scheduler is already registered");
  scheduler_ = scheduler;
  callbacks_.insert(callbacks_.begin(),
                    std::make_shared<LRSchedulerCallback>(std::move(scheduler), every,
                                                          std::move(monitor)));
}

void Trainer::save_checkpoint(const std::string& path) const {
  io::Checkpoint ck;
  ck.model = model_->state_dict();
  ck.optimizer = optimizer_->state_dict();
  if (scheduler_) ck.scheduler = scheduler_->state_dict();
  if (scaler_) ck.scaler = scaler_->state_dict();
  ck.architecture = architecture_;
  ck.epoch = epoch_;
  ck.global_step = global_step_;
  ck.loader_epoch = loader_epoch_;
  if (in_epoch_) {  // saved between two steps of an epoch: it resumes from the next batch
    ck.epoch = epoch_ - 1;
    ck.loader_epoch = pass_epoch_;
    ck.epoch_batches = epoch_batches_;
    ck.epoch_samples = epoch_samples_;
    ck.epoch_sums["loss_sum"] = loss_sum_.to(kCPU).clone();
    ck.epoch_sums["correct_sum"] = correct_sum_.to(kCPU).clone();
    ck.epoch_sums["classification"] = scalar_tensor(int64_t(classification_), kInt64);
  }
  ck.rng = io::capture_rng_states();
  History h = history_;
  if (current_logs_ && (h.empty() || h.epochs().back().epoch != epoch_)) h.add(epoch_, *current_logs_);
  ck.history = h.to_json();
  io::save_checkpoint(ck, path);
}

void Trainer::load_checkpoint(const std::string& path) {
  io::Checkpoint ck = io::load_checkpoint(path);  // verified before anything changes
  ANVIL_CHECK(ck.scheduler.empty() || scheduler_, ValueError, "Trainer::load_checkpoint: '", path,
              "' holds a learning-rate scheduler's state but the trainer has none (set_scheduler)");
  ANVIL_CHECK(!ck.scheduler.empty() || !scheduler_, ValueError, "Trainer::load_checkpoint: '",
              path, "' holds no learning-rate scheduler state but the trainer has a scheduler");
  History h;
  for (const auto& row : ck.history) {
    Logs logs;
    int64_t e = 0;
    for (const auto& [k, v] : row.items()) {
      if (k == "epoch") e = v.get<int64_t>();
      else logs[k] = v.is_number() ? v.get<double>() : NAN;
    }
    h.add(e, std::move(logs));
  }
  const char* sums[] = {"loss_sum", "correct_sum", "classification"};
  if (ck.epoch_batches > 0)
    for (const char* k : sums)
      ANVIL_CHECK(ck.epoch_sums.count(k), IOError, "Trainer::load_checkpoint: '", path,
                  "' was saved mid-epoch but lacks the epoch's running '", k, "'");
  model_->load_state_dict(ck.model);
  optimizer_->load_state_dict(ck.optimizer);
  if (scheduler_) scheduler_->load_state_dict(ck.scheduler);
  if (scaler_ && !ck.scaler.empty()) scaler_->load_state_dict(ck.scaler);
  io::restore_rng_states(ck.rng);
  epoch_ = ck.epoch;
  global_step_ = ck.global_step;
  loader_epoch_ = ck.loader_epoch;
  restore_loader_epoch_ = true;
  resume_batches_ = ck.epoch_batches;
  resume_samples_ = ck.epoch_samples;
  resume_sums_ = ck.epoch_batches > 0 ? ck.epoch_sums : StateDict{};
  resume_classification_ =
      ck.epoch_batches > 0 && ck.epoch_sums.at("classification").item<int64_t>() != 0;
  history_ = std::move(h);
  if (architecture_.empty()) architecture_ = ck.architecture;
}

Logs Trainer::evaluate(data::DataLoader& data) {
  NoGradGuard no_grad;
  model_->eval();
  std::vector<Tensor> outs, targets;
  Tensor loss_sum = zeros({}, TensorOptions(kFloat64).device(options_.device));
  int64_t samples = 0;
  bool per_token = false;
  for (data::Batch& b : device_batches(data)) {
    Tensor x = b.input.to(options_.device), y = b.target.to(options_.device);
    Tensor out = (*model_)(x);
    per_token = is_per_token(out, y);
    if (per_token) out = tokens_flat(out), y = y.reshape({-1});
    add_(loss_sum, mul(loss_->forward(out, match_target(out, y)).to(kFloat64), double(x.size(0))));
    samples += x.size(0);
    if (options_.metrics.empty()) continue;  // the outputs are kept for the metrics alone
    outs.push_back(out);
    targets.push_back(y);
  }
  Logs logs;
  if (samples == 0) return logs;
  logs["loss"] = loss_sum.item<double>() / double(samples);
  if (per_token) logs["perplexity"] = std::exp(logs["loss"]);
  if (outs.empty()) return logs;
  // One copy back of everything the metrics need, rather than one per batch.
  Logs m = compute_metrics(cat(outs, 0).cpu(), cat(targets, 0).cpu());
  logs.insert(m.begin(), m.end());
  return logs;
}

Logs Trainer::compute_metrics(const Tensor& outputs, const Tensor& targets) const {
  Logs logs;
  bool cls = is_classification(outputs, targets);
  for (const auto& name : options_.metrics) {
    bool cls_metric = !(name == "mse" || name == "rmse" || name == "mae" || name == "r2");
    if (cls_metric != cls) continue;  // e.g. accuracy on a regression problem: not applicable
    logs[name] = compute_metric(name, outputs, targets);
  }
  return logs;
}

Tensor Trainer::predict(data::DataLoader& data) {
  NoGradGuard no_grad;
  model_->eval();
  std::vector<Tensor> outs;
  for (data::Batch& b : device_batches(data))
    outs.push_back((*model_)(b.input.to(options_.device)).cpu());
  ANVIL_CHECK(!outs.empty(), ValueError, "predict: the data loader yielded no batches");
  return cat(outs, 0);
}

Tensor Trainer::predict(const Tensor& inputs, int64_t batch_size) {
  ANVIL_CHECK(inputs.dim() >= 1 && inputs.size(0) > 0, ValueError,
              "predict: expected at least one sample, got shape ", to_string(inputs.shape()));
  ANVIL_CHECK(batch_size >= 1, ValueError, "predict: batch_size must be >= 1, got ", batch_size);
  NoGradGuard no_grad;
  model_->eval();
  std::vector<Tensor> outs;
  for (int64_t i = 0; i < inputs.size(0); i += batch_size) {
    int64_t n = std::min(batch_size, inputs.size(0) - i);
    outs.push_back((*model_)(inputs.narrow(0, i, n).to(options_.device)).cpu());
  }
  return cat(outs, 0);
}

}  // namespace anvil::train
