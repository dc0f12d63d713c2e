#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <tuple>
#include <vector>

#include "anvil/autograd/grad_mode.h"
#include "anvil/optim/reduce_lr_on_plateau.h"
#include "anvil/train/trainer.h"

namespace anvil::train {
namespace {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) s = 0;
  int64_t t = int64_t(s + 0.5);
  std::ostringstream os;
  if (t >= 3600) os << t / 3600 << ':' << std::setw(2) << std::setfill('0') << (t / 60) % 60 << ':';
  else os << t / 60 << ':';
  os << std::setw(2) << std::setfill('0') << t % 60;
  return os.str();
}

// "loss 0.4123  accuracy 0.8512  val_loss 0.45 ..." in a stable order: loss first.
std::string format_logs(const Logs& logs) {
  std::ostringstream os;
  os << std::setprecision(4) << std::fixed;
  auto put = [&](const std::string& k, double v) {
    if (k == "lr") os << "  lr " << std::setprecision(3) << std::scientific << v << std::fixed << std::setprecision(4);
    else if (k == "time_s") os << "  " << std::setprecision(1) << v << "s" << std::setprecision(4);
    else if (k == "samples_per_s") os << "  " << std::setprecision(0) << v << " samples/s" << std::setprecision(4);
    else os << "  " << k << ' ' << v;
  };
  for (const char* first : {"loss", "accuracy"})
    if (logs.count(first)) put(first, logs.at(first));
  for (const auto& [k, v] : logs)
    if (k != "loss" && k != "accuracy" && k != "lr" && k != "time_s" && k != "samples_per_s") put(k, v);
  for (const char* last : {"lr", "time_s", "samples_per_s"})
    if (logs.count(last)) put(last, logs.at(last));
  return os.str();
}

}  // namespace

// ---- ProgressBar ----
ProgressBar::ProgressBar(std::ostream& os, int tty)
    : os_(os),
      tty_(tty >= 0 ? tty == 1
                    : (&os == &std::cout && isatty(STDOUT_FILENO)) ||
                          (&os == &std::cerr && isatty(STDERR_FILENO))) {}
ProgressBar::ProgressBar() : ProgressBar(std::cout) {}

void ProgressBar::on_train_begin(Trainer& t) { epochs_ = t.epochs_planned(); }

void ProgressBar::on_epoch_begin(Trainer&, int64_t) { last_draw_s_ = -1; }

bool ProgressBar::needs_loss(const StepInfo& info) const {
  return tty_ && (info.step == info.steps || info.elapsed_s - last_draw_s_ >= 0.1);
}

void ProgressBar::on_step_end(Trainer&, const StepInfo& info) {
  if (!tty_ || !needs_loss(info)) return;
  last_draw_s_ = info.elapsed_s;
  constexpr int kWidth = 24;
  double frac = info.steps ? double(info.step) / double(info.steps) : 1;
  int filled = int(frac * kWidth);
  double rate = info.elapsed_s > 0 ? double(info.samples) / info.elapsed_s : 0;
  double eta = frac > 0 ? info.elapsed_s * (1 - frac) / frac : 0;
  std::ostringstream line;
  line << "\repoch " << info.epoch << '/' << epochs_ << " [" << std::string(size_t(filled), '=')
       << (filled < kWidth ? ">" : "") << std::string(size_t(std::max(0, kWidth - filled - 1)), ' ')
       << "] " << info.step << '/' << info.steps << std::fixed << std::setprecision(4)
       << "  loss " << info.loss;
  if (info.accuracy >= 0) line << "  accuracy " << info.accuracy;
  line << std::setprecision(0) << "  " << rate << " samples/s  ETA " << format_duration(eta)
       << "\x1b[K";
  os_ << line.str() << std::flush;
}

void ProgressBar::on_epoch_end(Trainer&, int64_t epoch, Logs& logs) {
  if (tty_) os_ << "\r\x1b[K";
  os_ << "epoch " << epoch << '/' << epochs_ << format_logs(logs) << std::endl;
}

// ---- LRSchedulerCallback ----
LRSchedulerCallback::LRSchedulerCallback(std::shared_ptr<optim::LRScheduler> scheduler, Every every,
                                         std::string monitor)
    : scheduler_(std::move(scheduler)), every_(every), monitor_(std::move(monitor)) {
  ANVIL_CHECK(scheduler_ != nullptr, ValueError, "LRSchedulerCallback: the scheduler is null");
}

void LRSchedulerCallback::on_step_end(Trainer&, const StepInfo&) {
  if (every_ == Every::Step) scheduler_->step();
}

void LRSchedulerCallback::on_epoch_end(Trainer&, int64_t, Logs& logs) {
  if (every_ != Every::Epoch) return;
  if (auto* plateau = dynamic_cast<optim::ReduceLROnPlateau*>(scheduler_.get())) {
    std::string key = logs.count(monitor_) ? monitor_ : "loss";
    ANVIL_CHECK(logs.count(key), ValueError, "LRSchedulerCallback: ReduceLROnPlateau monitors '",
                monitor_, "', which this epoch did not log");
    plateau->step(logs.at(key));
  } else {
    scheduler_->step();
  }
}

// ---- EarlyStopping ----
EarlyStopping::EarlyStopping(std::string monitor, int64_t patience, double min_delta,
                             std::string mode, bool restore_best)
    : monitor_(std::move(monitor)),
      mode_(std::move(mode)),
      patience_(patience),
      min_delta_(std::fabs(min_delta)),
      restore_best_(restore_best) {
  ANVIL_CHECK(mode_ == "min" || mode_ == "max" || mode_ == "auto", ValueError,
              "EarlyStopping: mode must be 'min', 'max' or 'auto', got '", mode_, "'");
  ANVIL_CHECK(patience_ >= 0, ValueError, "EarlyStopping: patience must be >= 0, got ", patience_);
  if (mode_ == "auto") mode_ = higher_is_better(monitor_) ? "max" : "min";
}

void EarlyStopping::on_train_begin(Trainer&) {
  best_ = mode_ == "min" ? INFINITY : -INFINITY;
  best_epoch_ = wait_ = stopped_epoch_ = 0;
  best_weights_.clear();
}

void EarlyStopping::on_epoch_end(Trainer& t, int64_t epoch, Logs& logs) {
  auto it = logs.find(monitor_);
  ANVIL_CHECK(it != logs.end(), ValueError, "EarlyStopping: monitored value '", monitor_,
              "' is not in the epoch's logs (pass a validation loader for val_ values)");
  double v = it->second;
  bool better = mode_ == "min" ? v < best_ - min_delta_ : v > best_ + min_delta_;
  if (better) {
    best_ = v;
    best_epoch_ = epoch;
    wait_ = 0;
    if (restore_best_) {
      NoGradGuard no_grad;
      best_weights_.clear();
      for (auto& [k, tensor] : t.model().state_dict()) best_weights_[k] = tensor.clone();
    }
  } else if (++wait_ > patience_) {
    stopped_epoch_ = epoch;
    t.stop_training();
  }
}

void EarlyStopping::on_train_end(Trainer& t) {
  if (restore_best_ && !best_weights_.empty()) t.model().load_state_dict(best_weights_);
}

// ---- EpochHook / HistoryWriter ----
EpochHook::EpochHook(Fn fn, int64_t every_epochs) : fn_(std::move(fn)), every_(every_epochs) {
  ANVIL_CHECK(fn_ != nullptr && every_ >= 1, ValueError,
              "EpochHook: expected a function and every_epochs >= 1, got ", every_);
}

void EpochHook::on_epoch_end(Trainer& t, int64_t epoch, Logs& logs) {
  if (epoch % every_ == 0) fn_(t, epoch, logs);
}

HistoryWriter::HistoryWriter(std::string csv_path, std::string json_path)
    : csv_(std::move(csv_path)), json_(std::move(json_path)) {}

void HistoryWriter::on_epoch_end(Trainer& t, int64_t epoch, Logs& logs) {
  History h = t.history();
  h.add(epoch, logs);  // this epoch is added to the trainer's history after the callbacks
  if (!csv_.empty()) h.write_csv(csv_);
  if (!json_.empty()) h.write_json(json_);
}

// ---- CheckpointCallback ----
namespace {
// N for "<prefix>N.safetensors", or -1.
int64_t number_in(const std::string& name, const std::string& pre) {
  const std::string suf = ".safetensors";
  if (name.size() <= pre.size() + suf.size() || name.compare(0, pre.size(), pre) != 0 ||
      name.compare(name.size() - suf.size(), suf.size(), suf) != 0)
    return -1;
  std::string digits = name.substr(pre.size(), name.size() - pre.size() - suf.size());
  if (digits.empty() || digits.size() > 15 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return -1;
  return std::stoll(digits);
}

// The periodic checkpoints in `dir` (checkpoint-epoch-N and checkpoint-step-N), oldest first
// by the time they were written (a rename keeps the write time), then by N.
std::vector<std::string> checkpoints_in(const std::string& dir) {
  std::vector<std::tuple<std::filesystem::file_time_type, int64_t, std::string>> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    int64_t n = number_in(name, "checkpoint-epoch-");
    if (n < 0) n = number_in(name, "checkpoint-step-");
    if (n < 0 || !entry.is_regular_file(ec)) continue;
    found.emplace_back(entry.last_write_time(ec), n, entry.path().string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> paths;
  for (auto& f : found) paths.push_back(std::get<2>(f));
  return paths;
}
}  // namespace

CheckpointCallback::CheckpointCallback(std::string dir, int64_t every_epochs, int64_t keep_last,
                                       std::string monitor, std::string mode)
    : dir_(std::move(dir)),
      monitor_(std::move(monitor)),
      mode_(std::move(mode)),
      every_(every_epochs),
      keep_last_(keep_last) {
  ANVIL_CHECK(!dir_.empty(), ValueError, "CheckpointCallback: the directory is empty");
  ANVIL_CHECK(every_ >= 0, ValueError, "CheckpointCallback: every_epochs must be >= 0, got ", every_);
  ANVIL_CHECK(keep_last_ >= 0, ValueError, "CheckpointCallback: keep_last must be >= 0, got ",
              keep_last_);
  ANVIL_CHECK(mode_ == "min" || mode_ == "max" || mode_ == "auto", ValueError,
              "CheckpointCallback: mode must be 'min', 'max' or 'auto', got '", mode_, "'");
  if (mode_ == "auto") mode_ = higher_is_better(monitor_) ? "max" : "min";
}

std::string CheckpointCallback::path_for_epoch(int64_t epoch) const {
  return (std::filesystem::path(dir_) / ("checkpoint-epoch-" + std::to_string(epoch) + ".safetensors"))
      .string();
}

std::string CheckpointCallback::best_path() const {
  return (std::filesystem::path(dir_) / "best.safetensors").string();
}

void CheckpointCallback::on_train_begin(Trainer& t) {
  best_ = mode_ == "min" ? INFINITY : -INFINITY;
  best_epoch_ = 0;
  if (monitor_.empty()) return;
  for (const auto& rec : t.history().epochs()) {
    auto it = rec.values.find(monitor_);
    if (it == rec.values.end() || !std::isfinite(it->second)) continue;
    if (mode_ == "min" ? it->second < best_ : it->second > best_) {
      best_ = it->second;
      best_epoch_ = rec.epoch;
    }
  }
}

void CheckpointCallback::on_epoch_end(Trainer& t, int64_t epoch, Logs& logs) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  ANVIL_CHECK(!ec || std::filesystem::is_directory(dir_), IOError, "CheckpointCallback: cannot create '",
              dir_, "': ", ec.message());
  if (every_ > 0 && epoch % every_ == 0) save_periodic(t, path_for_epoch(epoch));
  if (!monitor_.empty()) {
    auto it = logs.find(monitor_);
    if (it != logs.end() && std::isfinite(it->second) &&
        (mode_ == "min" ? it->second < best_ : it->second > best_)) {
      best_ = it->second;
      best_epoch_ = epoch;
      t.save_checkpoint(best_path());
    }
  }
}

void CheckpointCallback::on_step_end(Trainer& t, const StepInfo&) {
  if (every_steps_ > 0 && t.global_step() % every_steps_ == 0)
    save_periodic(t, path_for_step(t.global_step()));
}

CheckpointCallback& CheckpointCallback::every_n_steps(int64_t steps) {
  ANVIL_CHECK(steps >= 0, ValueError, "CheckpointCallback: every_n_steps must be >= 0, got ", steps);
  every_steps_ = steps;
  return *this;
}

std::string CheckpointCallback::path_for_step(int64_t global_step) const {
  return (std::filesystem::path(dir_) /
          ("checkpoint-step-" + std::to_string(global_step) + ".safetensors"))
      .string();
}

void CheckpointCallback::save_periodic(Trainer& t, const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  ANVIL_CHECK(!ec || std::filesystem::is_directory(dir_), IOError,
              "CheckpointCallback: cannot create '", dir_, "': ", ec.message());
  t.save_checkpoint(path);
  if (keep_last_ == 0) return;
  auto found = checkpoints_in(dir_);
  int64_t excess = int64_t(found.size()) - keep_last_;
  for (auto it = found.begin(); excess > 0 && it != found.end(); ++it, --excess)
    if (*it != path) std::filesystem::remove(*it, ec);
}

std::string latest_checkpoint(const std::string& dir) {
  auto found = checkpoints_in(dir);
  return found.empty() ? std::string() : found.back();
}

}  // namespace anvil::train
