// GradScaler: the host-side bookkeeping (stages per optimizer, flags per device) around the
// device kernels of backend/optim_kernels.h. Nothing here reads device memory except
// get_scale(), found_inf_host() and state_dict(), which say so.
#include "anvil/amp/grad_scaler.h"

#include <algorithm>

#include "anvil/autograd/grad_mode.h"
#include "anvil/core/error.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "backend/optim_kernels.h"

namespace anvil::amp {
namespace {

void check_growth_factor(double v) {
  ANVIL_CHECK(v > 1.0, ValueError, "GradScaler: expected growth_factor > 1, got ", v);
}
void check_backoff_factor(double v) {
  ANVIL_CHECK(v > 0.0 && v < 1.0, ValueError, "GradScaler: expected backoff_factor in (0, 1), got ",
              v);
}
void check_growth_interval(int64_t v) {
  ANVIL_CHECK(v >= 1, ValueError, "GradScaler: expected growth_interval >= 1, got ", v);
}

// `t` on `device` (the same tensor when it is there already).
Tensor on(const Tensor& t, Device device) { return t.device() == device ? t : t.to(device); }

}  // namespace

GradScaler::GradScaler(DeviceKind device, GradScalerOptions o)
    : device_(device),
      // As PyTorch: a CUDA scaler without a CUDA device turns itself off.
      enabled_(o.enabled && !(device == DeviceKind::CUDA && !cuda_is_available())),
      init_scale_(o.init_scale),
      growth_factor_(o.growth_factor),
      backoff_factor_(o.backoff_factor),
      growth_interval_(o.growth_interval) {
  check_growth_factor(o.growth_factor);
  check_backoff_factor(o.backoff_factor);
  check_growth_interval(o.growth_interval);
}

void GradScaler::check_scale(const char* op) const {
  ANVIL_CHECK(scale_.defined(), ValueError, "GradScaler.", op,
              ": the scale does not exist yet; call scale(loss) (and backward on it) first");
}

GradScaler::PerOptimizer& GradScaler::state_of(const optim::Optimizer& opt) {
  return per_optimizer_[&opt];
}

const Tensor& GradScaler::flag_for(const optim::Optimizer& opt, Device device) {
  for (const Flag& f : flags_)
    if (f.opt == &opt && f.device == device) return f.value;
  NoGradGuard no_grad;
  flags_.push_back({&opt, device, zeros({}, TensorOptions(kFloat32).device(device))});
  return flags_.back().value;
}

Tensor GradScaler::scale(const Tensor& loss) {
  if (!enabled_) return loss;
  ANVIL_CHECK(loss.defined(), ValueError, "GradScaler.scale: expected a defined tensor");
  ANVIL_CHECK(loss.device().kind == device_, DeviceError, "GradScaler.scale: expected a tensor on ",
              device_kind_name(device_), " (the scaler's device), got one on ",
              loss.device().str());
  if (!scale_.defined()) {
    NoGradGuard no_grad;
    const Device d = loss.device();
    scale_ = full({}, init_scale_, TensorOptions(kFloat32).device(d));
    growth_tracker_ = full({}, int64_t(init_growth_tracker_), TensorOptions(kInt32).device(d));
  }
  return mul(loss, on(scale_, loss.device()));
}

void GradScaler::unscale_(optim::Optimizer& opt) {
  if (!enabled_) return;
  check_scale("unscale_");
  PerOptimizer& st = state_of(opt);
  ANVIL_CHECK(st.stage != Stage::Unscaled, ValueError,
              "GradScaler.unscale_: unscale_() has already been called on this optimizer since "
              "the last update()");
  ANVIL_CHECK(st.stage != Stage::Stepped, ValueError,
              "GradScaler.unscale_: unscale_() is being called after step() (call update() "
              "first)");
  NoGradGuard no_grad;
  // One kernel call per (device, dtype); strided gradients are unscaled in a dense copy.
  struct Bucket {
    Device device;
    DType dtype;
    std::vector<Tensor> dense;
  };
  std::vector<Bucket> buckets;
  std::vector<std::pair<Tensor, Tensor>> write_back;
  for (const auto& group : opt.param_groups())
    for (const Tensor& p : group.params) {
      const Tensor& g = p.grad();
      if (!g.defined()) continue;
      Tensor dense = g.contiguous();
      if (!dense.is_same(g)) write_back.emplace_back(g, dense);
      auto it = std::find_if(buckets.begin(), buckets.end(), [&](const Bucket& b) {
        return b.device == g.device() && b.dtype == g.dtype();
      });
      if (it == buckets.end()) it = buckets.insert(buckets.end(), {g.device(), g.dtype(), {}});
      it->dense.push_back(dense);
    }
  st.found_inf.clear();
  for (const Bucket& b : buckets) {
    auto seen = std::find_if(st.found_inf.begin(), st.found_inf.end(),
                             [&](const auto& f) { return f.first == b.device; });
    if (seen == st.found_inf.end()) {
      const Tensor& flag = flag_for(opt, b.device);
      flag.zero_();
      seen = st.found_inf.insert(st.found_inf.end(), {b.device, flag});
    }
    backend::unscale_grads_kernels[b.device](b.dense, seen->second, on(scale_, b.device));
  }
  for (auto& [grad, dense] : write_back) grad.copy_(dense);
  st.stage = Stage::Unscaled;
}

void GradScaler::step(optim::Optimizer& opt) {
  if (!enabled_) {
    opt.step();
    return;
  }
  check_scale("step");
  PerOptimizer& st = state_of(opt);
  ANVIL_CHECK(st.stage != Stage::Stepped, ValueError,
              "GradScaler.step: step() has already been called on this optimizer since the last "
              "update()");
  if (st.stage == Stage::Ready) unscale_(opt);
  ANVIL_CHECK(!st.found_inf.empty(), ValueError,
              "GradScaler.step: no inf checks were recorded for this optimizer (none of its "
              "parameters has a gradient)");
  const std::vector<std::pair<Device, Tensor>> flags = st.found_inf;
  opt.step_unless_found_inf([&flags](Device d) {
    for (const auto& [device, flag] : flags)
      if (device == d) return flag;
    return Tensor();
  });
  st.stage = Stage::Stepped;
}

void GradScaler::update() {
  if (!enabled_) return;
  check_scale("update");
  NoGradGuard no_grad;
  Tensor found;  // the flags of every optimizer, summed on the scale's device (as PyTorch)
  for (const auto& [opt, st] : per_optimizer_)
    for (const auto& [device, flag] : st.found_inf) {
      Tensor f = on(flag, scale_.device());
      found = found.defined() ? add(found, f) : f;
    }
  ANVIL_CHECK(found.defined(), ValueError,
              "GradScaler.update: no inf checks were recorded prior to update() (call step() or "
              "unscale_() first)");
  backend::update_scale_kernels[scale_.device()](scale_, growth_tracker_, found, growth_factor_,
                                                 backoff_factor_, growth_interval_);
  per_optimizer_.clear();
}

void GradScaler::update(double new_scale) {
  if (!enabled_) return;
  check_scale("update");
  scale_.fill_(new_scale);
  per_optimizer_.clear();
}

void GradScaler::update(const Tensor& new_scale) {
  if (!enabled_) return;
  check_scale("update");
  ANVIL_CHECK(new_scale.defined() && new_scale.numel() == 1 && new_scale.dtype() == kFloat32 &&
                  !new_scale.requires_grad(),
              ValueError,
              "GradScaler.update: expected new_scale as a number or a one-element float32 tensor "
              "without requires_grad, got ",
              new_scale.defined() ? dtype_name(new_scale.dtype()) : "an undefined tensor",
              new_scale.defined() ? detail::cat(" of ", new_scale.numel(), " elements") : "");
  scale_.copy_(new_scale.reshape({}));
  per_optimizer_.clear();
}

double GradScaler::get_scale() const {
  if (!enabled_) return 1.0;
  return scale_.defined() ? scale_.item<double>() : init_scale_;
}

void GradScaler::set_growth_factor(double v) {
  check_growth_factor(v);
  growth_factor_ = v;
}

void GradScaler::set_backoff_factor(double v) {
  check_backoff_factor(v);
  backoff_factor_ = v;
}

void GradScaler::set_growth_interval(int64_t v) {
  check_growth_interval(v);
  growth_interval_ = v;
}

bool GradScaler::found_inf_host(const optim::Optimizer& opt) const {
  auto it = per_optimizer_.find(&opt);
  if (it == per_optimizer_.end()) return false;
  for (const auto& [device, flag] : it->second.found_inf)
    if (flag.item<float>() != 0.0f) return true;
  return false;
}

StateDict GradScaler::state_dict() const {
  if (!enabled_) return {};
  const int32_t tracker =
      growth_tracker_.defined() ? growth_tracker_.item<int32_t>() : init_growth_tracker_;
  return {{"scale", scalar_tensor(get_scale(), kFloat32)},
          {"growth_factor", scalar_tensor(growth_factor_, kFloat64)},
          {"backoff_factor", scalar_tensor(backoff_factor_, kFloat64)},
          {"growth_interval", scalar_tensor(growth_interval_, kInt64)},
          {"_growth_tracker", scalar_tensor(int64_t(tracker), kInt32)}};
}

void GradScaler::load_state_dict(const StateDict& sd) {
  if (!enabled_) return;
  ANVIL_CHECK(!sd.empty(), ValueError,
              "GradScaler.load_state_dict: the source state dict is empty, possibly because it "
              "was saved from a disabled GradScaler");
  auto get = [&sd](const char* key) {
    auto it = sd.find(key);
    ANVIL_CHECK(it != sd.end(), ValueError, "GradScaler.load_state_dict: missing key \"", key,
                "\"");
    ANVIL_CHECK(it->second.numel() == 1, ValueError, "GradScaler.load_state_dict: \"", key,
                "\" must hold one number, got ", it->second.numel());
    return it->second.item();
  };
  // Everything is checked before anything changes.
  const double scale = get("scale").to<double>();
  const double growth = get("growth_factor").to<double>();
  const double backoff = get("backoff_factor").to<double>();
  const int64_t interval = get("growth_interval").to<int64_t>();
  const int64_t tracker = get("_growth_tracker").to<int64_t>();
  check_growth_factor(growth);
  check_backoff_factor(backoff);
  check_growth_interval(interval);
  init_scale_ = scale;
  growth_factor_ = growth;
  backoff_factor_ = backoff;
  growth_interval_ = interval;
  init_growth_tracker_ = int32_t(tracker);
  if (scale_.defined()) scale_.fill_(scale);
  if (growth_tracker_.defined()) growth_tracker_.fill_(tracker);
}

}  // namespace anvil::amp
