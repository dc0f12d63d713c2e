#include "anvil/optim/lr_scheduler.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "anvil/core/error.h"
#include "anvil/ops/creation.h"

namespace anvil::optim {

namespace {
Tensor list_tensor(const std::vector<double>& v) { return tensor(v, {int64_t(v.size())}); }
std::vector<double> scaled(std::vector<double> v, double f) {
  for (double& x : v) x *= f;
  return v;
}
const Tensor& need(const StateDict& sd, const std::string& key, const char* fn) {
  auto it = sd.find(key);
  ANVIL_CHECK(it != sd.end(), ValueError, fn, ": the state dict lacks \"", key, "\"");
  return it->second;
}
}  // namespace

// ---- LRScheduler ----

LRScheduler::LRScheduler(Optimizer& optimizer, int64_t last_epoch) : opt_(optimizer) {
  auto& groups = opt_.param_groups();
  for (size_t i = 0; i < groups.size(); ++i) {
    auto& o = groups[i].options;
    if (last_epoch == -1)
      o.emplace("initial_lr", o.at("lr"));
    else
      ANVIL_CHECK(o.count("initial_lr"), ValueError, "LRScheduler: resuming with last_epoch ",
                  last_epoch, " needs \"initial_lr\" in param group ", i,
                  " (load the optimizer's state dict first)");
  }
  base_lrs_ = group_values("initial_lr");
  last_epoch_ = last_epoch;
}

LRScheduler::LRScheduler(Optimizer& optimizer, NoInitialLr) : opt_(optimizer) {}

std::vector<double> LRScheduler::group_values(const std::string& key) const {
  std::vector<double> out;
  for (const auto& g : opt_.param_groups()) out.push_back(g.options.at(key));
  return out;
}

void LRScheduler::initial_step() {
  step_count_ = 0;
  is_initial_ = true;
  step();
  is_initial_ = false;
}

void LRScheduler::step() {
  step_count_ += 1;
  update_lr();
}

void LRScheduler::update_lr(std::optional<int64_t> epoch) {
  std::vector<double> values;
  if (!epoch) {
    last_epoch_ += 1;
    values = get_lr();
  } else {
    last_epoch_ = *epoch;
    auto closed = closed_form_lr();
    values = closed ? *closed : get_lr();
  }
  auto& groups = opt_.param_groups();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options["lr"] = values.at(i);
  last_lr_ = group_values("lr");
}

StateDict LRScheduler::state_dict() const {
  return {{"last_epoch", scalar_tensor(last_epoch_)},
          {"_step_count", scalar_tensor(step_count_)},
          {"base_lrs", list_tensor(base_lrs_)},
          {"_last_lr", list_tensor(last_lr_)}};
}

void LRScheduler::load_state_dict(const StateDict& sd) {
  const char* fn = "LRScheduler.load_state_dict";
  const Tensor& base = need(sd, "base_lrs", fn);
  ANVIL_CHECK(size_t(base.numel()) == opt_.param_groups().size(), ValueError, fn,
              ": the state "
              "dict has ",
              base.numel(), " base learning rates, the optimizer ", opt_.param_groups().size(),
              " param groups");
  last_epoch_ = need(sd, "last_epoch", fn).item<int64_t>();
  step_count_ = need(sd, "_step_count", fn).item<int64_t>();
  base_lrs_ = base.to_vector<double>();
  last_lr_ = need(sd, "_last_lr", fn).to_vector<double>();
}

// ---- StepLR ----

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma, int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch), step_size_(step_size), gamma_(gamma) {
  ANVIL_CHECK(step_size >= 1, ValueError, "StepLR: expected step_size >= 1, got ", step_size);
  initial_step();
}

std::vector<double> StepLR::get_lr() {
  if (last_epoch_ == 0 || last_epoch_ % step_size_ != 0) return group_values("lr");
  return scaled(group_values("lr"), gamma_);
}

std::optional<std::vector<double>> StepLR::closed_form_lr() const {
  return scaled(base_lrs_, std::pow(gamma_, double(last_epoch_ / step_size_)));
}

// ---- MultiStepLR ----

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma,
                         int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch), milestones_(std::move(milestones)), gamma_(gamma) {
  std::sort(milestones_.begin(), milestones_.end());
  initial_step();
}

std::vector<double> MultiStepLR::get_lr() {
  const auto n = std::count(milestones_.begin(), milestones_.end(), last_epoch_);
  if (n == 0) return group_values("lr");
  return scaled(group_values("lr"), std::pow(gamma_, double(n)));
}

std::optional<std::vector<double>> MultiStepLR::closed_form_lr() const {
  const auto n =
      std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) - milestones_.begin();
  return scaled(base_lrs_, std::pow(gamma_, double(n)));
}

// ---- ConstantLR ----

ConstantLR::ConstantLR(Optimizer& optimizer, double factor, int64_t total_iters, int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch), factor_(factor), total_iters_(total_iters) {
  ANVIL_CHECK(factor >= 0 && factor <= 1, ValueError,
              "ConstantLR: expected a multiplicative factor in [0, 1], got ", factor);
  initial_step();
}

std::vector<double> ConstantLR::get_lr() {
  if (last_epoch_ == 0) return scaled(group_values("lr"), factor_);
  if (last_epoch_ != total_iters_) return group_values("lr");
  return scaled(group_values("lr"), 1.0 / factor_);
}

std::optional<std::vector<double>> ConstantLR::closed_form_lr() const {
  return scaled(base_lrs_, factor_ + double(last_epoch_ >= total_iters_) * (1 - factor_));
}

// ---- LinearLR ----

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor,
                   int64_t total_iters, int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch),
      start_factor_(start_factor),
      end_factor_(end_factor),
      total_iters_(total_iters) {
  ANVIL_CHECK(start_factor > 0 && start_factor <= 1, ValueError,
              "LinearLR: expected start_factor in (0, 1], got ", start_factor);
  ANVIL_CHECK(end_factor >= 0 && end_factor <= 1, ValueError,
              "LinearLR: expected end_factor in [0, 1], got ", end_factor);
  initial_step();
}

std::vector<double> LinearLR::get_lr() {
  if (last_epoch_ == 0) return scaled(group_values("lr"), start_factor_);
  if (is_initial_ || last_epoch_ > total_iters_) return group_values("lr");
  const double d = end_factor_ - start_factor_;
  return scaled(group_values("lr"),
                1.0 + d / (double(total_iters_) * start_factor_ + double(last_epoch_ - 1) * d));
}

std::optional<std::vector<double>> LinearLR::closed_form_lr() const {
  return scaled(base_lrs_, start_factor_ + (end_factor_ - start_factor_) *
                                               double(std::min(total_iters_, last_epoch_)) /
                                               double(total_iters_));
}

// ---- ExponentialLR ----

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma, int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch), gamma_(gamma) {
  initial_step();
}

std::vector<double> ExponentialLR::get_lr() {
  if (is_initial_) return group_values("lr");
  return scaled(group_values("lr"), gamma_);
}

std::optional<std::vector<double>> ExponentialLR::closed_form_lr() const {
  return scaled(base_lrs_, std::pow(gamma_, double(last_epoch_)));
}

// ---- CosineAnnealingLR ----

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min,
                                     int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch), T_max_(T_max), eta_min_(eta_min) {
  ANVIL_CHECK(T_max >= 1, ValueError, "CosineAnnealingLR: expected T_max >= 1, got ", T_max);
  initial_step();
}

std::vector<double> CosineAnnealingLR::get_lr() {
  constexpr double pi = std::numbers::pi;
  const double T = double(T_max_), e = double(last_epoch_);
  std::vector<double> lrs = group_values("lr");
  if (is_initial_) return lrs;
  for (size_t i = 0; i < lrs.size(); ++i) {
    const double base = base_lrs_[i];
    if (step_count_ == 1 && last_epoch_ > 0)
      lrs[i] = eta_min_ + (base - eta_min_) * (1 + std::cos(e * pi / T)) / 2;
    else if ((last_epoch_ - 1 - T_max_) % (2 * T_max_) == 0)
      lrs[i] = lrs[i] + (base - eta_min_) * (1 - std::cos(pi / T)) / 2;
    else
      lrs[i] = (1 + std::cos(pi * e / T)) / (1 + std::cos(pi * (e - 1) / T)) * (lrs[i] - eta_min_) +
               eta_min_;
  }
  return lrs;
}

std::optional<std::vector<double>> CosineAnnealingLR::closed_form_lr() const {
  std::vector<double> lrs = base_lrs_;
  for (double& b : lrs)
    b = eta_min_ + (b - eta_min_) *
                       (1 + std::cos(std::numbers::pi * double(last_epoch_) / double(T_max_))) / 2;
  return lrs;
}

}  // namespace anvil::optim
