#include "anvil/optim/optimizer.h"

#include <algorithm>
#include <bit>
#include <set>

#include "anvil/autograd/grad_mode.h"
#include "anvil/core/error.h"
#include "anvil/ops/creation.h"
#include "backend/optim_kernels.h"
#include "fused_step.h"

namespace anvil::optim {

Optimizer::Optimizer(std::string name, Options defaults)
    : name_(std::move(name)), defaults_(std::move(defaults)) {}

void Optimizer::init(std::vector<ParamGroup> groups) {
  validate(defaults_);
  ANVIL_CHECK(!groups.empty(), ValueError, name_,
              ": expected at least one parameter group, got none");
  for (auto& g : groups) add_param_group(std::move(g));
}

std::vector<ParamGroup> single_group(std::vector<Tensor> params) {
  return {ParamGroup{std::move(params), {}}};
}

void Optimizer::add_param_group(ParamGroup group) {
  const size_t g = groups_.size();
  for (const auto& [key, value] : group.options) {
    (void)value;
    if (defaults_.count(key)) continue;
    std::string known;
    for (const auto& [k, v] : defaults_) known += (known.empty() ? "" : ", ") + k;
    throw ValueError(detail::cat(name_, ": unknown option \"", key, "\" in parameter group ", g,
                                 " (expected one of: ", known, ")"));
  }
  for (const auto& [key, value] : defaults_) group.options.emplace(key, value);
  validate(group.options);
  std::set<const TensorImpl*> seen;
  for (const auto& gr : groups_)
    for (const auto& p : gr.params) seen.insert(p.impl());
  for (size_t i = 0; i < group.params.size(); ++i) {
    const Tensor& p = group.params[i];
    ANVIL_CHECK(p.defined(), ValueError, name_, ": parameter ", i, " of group ", g,
                " is an undefined tensor");
    ANVIL_CHECK(p.is_leaf() && p.is_floating_point(), ValueError, name_, ": parameter ", i,
                " of group ", g, " must be a floating-point leaf tensor, got ",
                p.is_leaf() ? dtype_name(p.dtype()) : "a non-leaf");
    ANVIL_CHECK(seen.insert(p.impl()).second, ValueError, name_, ": parameter ", i, " of group ", g,
                " appears more than once (in this or another group)");
  }
  groups_.push_back(std::move(group));
}

void Optimizer::step() {
  NoGradGuard no_grad;
  prepare_step();
  for (size_t g = 0; g < groups_.size(); ++g) {
    std::vector<Tensor> params;
    for (const auto& p : groups_[g].params)
      if (p.grad().defined()) params.push_back(p);
    if (!params.empty()) update_group(g, params);
  }
}

void Optimizer::step_unless_found_inf(const std::function<Tensor(Device)>& found_inf) {
  NoGradGuard no_grad;
  std::vector<Device> devices;
  size_t with_grad = 0;
  for (const auto& g : groups_)
    for (const auto& p : g.params) {
      if (!p.grad().defined()) continue;
      ++with_grad;
      if (std::find(devices.begin(), devices.end(), p.device()) == devices.end())
        devices.push_back(p.device());
    }
  fused::FoundInfScope scope(found_inf);
  if (skips_on_device_ != 1) {
    // PyTorch's path for optimizers without fused skipping: decide on the host.
    for (Device d : devices)
      if (scope.flag_set_on_host(d)) return;
  }
  step();
  // Learnt once: did every parameter with a gradient go through a fused update?
  if (with_grad > 0) skips_on_device_ = scope.handled() == with_grad ? 1 : 0;
}

void Optimizer::prepare_step() {
  NoGradGuard no_grad;
  for (size_t g = 0; g < lr_tensors_.size() && g < groups_.size(); ++g) {
    const double lr = groups_[g].options.at("lr");
    for (auto& d : lr_tensors_[g])
      // Bitwise, so that a NaN learning rate is written once, not on every call.
      if (std::bit_cast<uint64_t>(d.written) != std::bit_cast<uint64_t>(lr)) {
        d.value.fill_(lr);
        d.written = lr;
      }
  }
}

uint64_t Optimizer::hyper_version() const {
  std::vector<GroupShape> now;
  for (const auto& g : groups_) {
    GroupShape s{g.options, {}};
    s.options.erase("lr");
    for (const auto& p : g.params) s.params.push_back(p.impl());
    now.push_back(std::move(s));
  }
  if (now != seen_groups_) {
    seen_groups_ = std::move(now);
    ++hyper_version_;
  }
  return hyper_version_;
}

Tensor Optimizer::lr_tensor(size_t group, Device device) {
  ANVIL_CHECK(group < groups_.size(), ValueError, name_, ".lr_tensor: group ", group,
              " does not exist (the optimizer has ", groups_.size(), ")");
  if (lr_tensors_.size() < groups_.size()) lr_tensors_.resize(groups_.size());
  for (const auto& d : lr_tensors_[group])
    if (d.device == device) return d.value;
  const double lr = groups_[group].options.at("lr");
  NoGradGuard no_grad;
  lr_tensors_[group].push_back({device, full({}, lr, TensorOptions(kFloat64).device(device)), lr});
  return lr_tensors_[group].back().value;
}

Tensor Optimizer::step(const std::function<Tensor()>& closure) {
  Tensor loss;
  {
    EnableGradGuard enable;
    loss = closure();
  }
  step();
  return loss;
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params) p.set_grad(Tensor());
}

double Optimizer::lr() const {
  ANVIL_CHECK(!groups_.empty(), ValueError, name_, ".lr: the optimizer has no parameter groups");
  return groups_[0].options.at("lr");
}

void Optimizer::set_lr(double lr) {
  ANVIL_CHECK(lr >= 0, ValueError, name_, ".set_lr: expected lr >= 0, got ", lr);
  for (auto& g : groups_) g.options["lr"] = lr;
}

const StateDict& Optimizer::state(const Tensor& param) const {
  static const StateDict empty;
  auto it = state_.find(param.impl());
  return it == state_.end() ? empty : it->second;
}

std::vector<Tensor> Optimizer::all_params() const {
  std::vector<Tensor> out;
  for (const auto& g : groups_) out.insert(out.end(), g.params.begin(), g.params.end());
  return out;
}

StateDict Optimizer::state_dict() const {
  StateDict sd;
  int64_t index = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = detail::cat("param_groups.", g, ".");
    for (const auto& [key, value] : groups_[g].options)
      sd[prefix + key] = scalar_tensor(value, kFloat64);
    std::vector<int64_t> ids;
    for (const auto& p : groups_[g].params) {
      ids.push_back(index);
      auto it = state_.find(p.impl());
      if (it != state_.end())
        for (const auto& [key, t] : it->second)
          sd[detail::cat("state.", index, ".", key)] = t.clone();
      ++index;
    }
    sd[prefix + "params"] = tensor(ids, {int64_t(ids.size())});
  }
  return sd;
}

void Optimizer::load_state_dict(const StateDict& sd) {
  const std::string fn = name_ + ".load_state_dict";
  // Check everything before changing anything.
  size_t n_groups = 0;
  while (sd.count(detail::cat("param_groups.", n_groups, ".params"))) ++n_groups;
  ANVIL_CHECK(n_groups == groups_.size(), ValueError, fn, ": expected ", groups_.size(),
              " parameter groups, the state dict has ", n_groups);
  const std::vector<Tensor> params = all_params();
  std::vector<Options> options(n_groups);
  int64_t index = 0;
  for (size_t g = 0; g < n_groups; ++g) {
    const std::string prefix = detail::cat("param_groups.", g, ".");
    auto ids = sd.at(prefix + "params").to_vector<int64_t>();
    ANVIL_CHECK(ids.size() == groups_[g].params.size(), ValueError, fn, ": group ", g, " has ",
                groups_[g].params.size(), " parameters, the state dict's has ", ids.size());
    for (size_t i = 0; i < ids.size(); ++i)
      ANVIL_CHECK(ids[i] == index + int64_t(i), ValueError, fn, ": group ", g, " lists parameter ",
                  ids[i], " where ", index + int64_t(i), " was expected");
    index += int64_t(ids.size());
    for (auto it = sd.lower_bound(prefix); it != sd.end() && it->first.rfind(prefix, 0) == 0;
         ++it) {
      const std::string key = it->first.substr(prefix.size());
      if (key == "params") continue;
      ANVIL_CHECK(it->second.numel() == 1, ValueError, fn, ": option ", it->first,
                  " must hold one number, got ", it->second.numel());
      options[g][key] = it->second.item<double>();
    }
  }
  std::map<const TensorImpl*, StateDict> state;
  for (auto it = sd.lower_bound("state."); it != sd.end() && it->first.rfind("state.", 0) == 0;
       ++it) {
    const std::string rest = it->first.substr(6);
    const size_t dot = rest.find('.');
    ANVIL_CHECK(dot != std::string::npos && dot > 0, ValueError, fn, ": malformed key ", it->first,
                " (expected state.<index>.<name>)");
    const int64_t i = std::stoll(rest.substr(0, dot));
    ANVIL_CHECK(i >= 0 && i < int64_t(params.size()), ValueError, fn, ": key ", it->first,
                " names parameter ", i, " but the optimizer has ", params.size());
    const Tensor& p = params[size_t(i)];
    const Tensor& t = it->second;
    // Buffers shaped like the parameter follow its device and take its state dtype (float32
    // for 16-bit parameters); counters keep their dtype but move to its device too.
    Tensor v = (t.is_floating_point() && t.shape() == p.shape() && t.dim() > 0)
                   ? t.to(p.device(), backend::optim_state_dtype(p.dtype()))
                   : t.to(p.device());
    if (v.is_same(t)) v = t.clone();
    state[p.impl()][rest.substr(dot + 1)] = v.detach();
  }
  for (size_t g = 0; g < n_groups; ++g) groups_[g].options = std::move(options[g]);
  state_ = std::move(state);
  ++hyper_version_;  // the state a captured step wrote to is gone
}

double increment_step(StateDict& state) {
  auto it = state.find("step");
  double step = it == state.end() ? 0.0 : it->second.item<double>();
  step += 1;
  if (it == state.end())
    state["step"] = scalar_tensor(step, kFloat32);
  else
    it->second.fill_(step);
  return step;
}

}  // namespace anvil::optim
