#include "anvil/optim/reduce_lr_on_plateau.h"

#include <algorithm>
#include <limits>

#include "anvil/core/error.h"
#include "anvil/ops/creation.h"

namespace anvil::optim {

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options)
    : LRScheduler(optimizer, NoInitialLr{}), o_(std::move(options)) {
  ANVIL_CHECK(o_.factor < 1.0, ValueError, "ReduceLROnPlateau: expected factor < 1, got ",
              o_.factor);
  ANVIL_CHECK(o_.mode == "min" || o_.mode == "max", ValueError,
              "ReduceLROnPlateau: mode must be \"min\" or \"max\", got \"", o_.mode, "\"");
  ANVIL_CHECK(o_.threshold_mode == "rel" || o_.threshold_mode == "abs", ValueError,
              "ReduceLROnPlateau: threshold_mode must be \"rel\" or \"abs\", got \"",
              o_.threshold_mode, "\"");
  const size_t n = opt_.param_groups().size();
  ANVIL_CHECK(o_.min_lr.size() == 1 || o_.min_lr.size() == n, ValueError,
              "ReduceLROnPlateau: expected 1 or ", n, " min_lr values, got ", o_.min_lr.size());
  min_lrs_ = o_.min_lr.size() == 1 ? std::vector<double>(n, o_.min_lr[0]) : o_.min_lr;
  last_epoch_ = 0;
  last_lr_ = group_values("lr");
  best_ = o_.mode == "min" ? std::numeric_limits<double>::infinity()
                           : -std::numeric_limits<double>::infinity();
}

void ReduceLROnPlateau::step() {
  throw ValueError("ReduceLROnPlateau.step: needs the metric; call step(metric)");
}

bool ReduceLROnPlateau::is_better(double a, double best) const {
  if (o_.mode == "min" && o_.threshold_mode == "rel") return a < best * (1.0 - o_.threshold);
  if (o_.mode == "min") return a < best - o_.threshold;
  if (o_.threshold_mode == "rel") return a > best * (o_.threshold + 1.0);
  return a > best + o_.threshold;
}

void ReduceLROnPlateau::step(double metric) {
  last_epoch_ += 1;
  if (is_better(metric, best_)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    num_bad_epochs_ += 1;
  }
  if (cooldown_counter_ > 0) {
    cooldown_counter_ -= 1;
    num_bad_epochs_ = 0;  // ignore bad epochs in cooldown
  }
  if (num_bad_epochs_ > o_.patience) {
    auto& groups = opt_.param_groups();
    if (min_lrs_.size() != groups.size()) {
      ANVIL_CHECK(o_.min_lr.size() == 1, ValueError, "ReduceLROnPlateau.step: the optimizer has ",
                  groups.size(), " param groups but min_lr has ", min_lrs_.size(), " values");
      min_lrs_.assign(groups.size(), o_.min_lr[0]);
    }
    for (size_t i = 0; i < groups.size(); ++i) {
      const double old_lr = groups[i].options.at("lr");
      const double new_lr = std::max(old_lr * o_.factor, min_lrs_[i]);
      if (old_lr - new_lr > o_.eps) groups[i].options["lr"] = new_lr;
    }
    cooldown_counter_ = o_.cooldown;
    num_bad_epochs_ = 0;
  }
  last_lr_ = group_values("lr");
}

StateDict ReduceLROnPlateau::state_dict() const {
  return {{"last_epoch", scalar_tensor(last_epoch_)},
          {"_last_lr", tensor(last_lr_, {int64_t(last_lr_.size())})},
          {"best", scalar_tensor(best_, kFloat64)},
          {"num_bad_epochs", scalar_tensor(num_bad_epochs_)},
          {"cooldown_counter", scalar_tensor(cooldown_counter_)}};
}

void ReduceLROnPlateau::load_state_dict(const StateDict& sd) {
  for (const char* k : {"last_epoch", "_last_lr", "best", "num_bad_epochs", "cooldown_counter"})
    ANVIL_CHECK(sd.count(k), ValueError,
                "ReduceLROnPlateau.load_state_dict: the state dict lacks \"", k, "\"");
  last_epoch_ = sd.at("last_epoch").item<int64_t>();
  last_lr_ = sd.at("_last_lr").to_vector<double>();
  best_ = sd.at("best").item<double>();
  num_bad_epochs_ = sd.at("num_bad_epochs").item<int64_t>();
  cooldown_counter_ = sd.at("cooldown_counter").item<int64_t>();
}

}  // namespace anvil::optim
