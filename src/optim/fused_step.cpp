#include "fused_step.h"

#include "anvil/core/error.h"
#include "anvil/ops/creation.h"

namespace anvil::optim::fused {

namespace {
thread_local FoundInfScope* g_found_inf_scope = nullptr;

// `t` as `like` needs it: on `device` in `dtype`, dense. Replaces it in the state when not.
void conform(Tensor& t, Device device, DType dtype) {
  if (t.device() != device || t.dtype() != dtype || !t.is_contiguous())
    t = t.detach().to(device, dtype).contiguous();
}
}  // namespace

FoundInfScope::FoundInfScope(std::function<Tensor(Device)> found_inf)
    : found_inf_(std::move(found_inf)), outer_(g_found_inf_scope) {
  g_found_inf_scope = this;
}

FoundInfScope::~FoundInfScope() { g_found_inf_scope = outer_; }

FoundInfScope* FoundInfScope::current() { return g_found_inf_scope; }

Tensor FoundInfScope::flag(Device device) {
  for (const auto& [d, t] : flags_)
    if (d == device) return t;
  Tensor t = found_inf_ ? found_inf_(device) : Tensor();
  ANVIL_CHECK(!t.defined() || (t.numel() == 1 && t.dtype() == kFloat32 && t.device() == device),
              ValueError, "optimizer step: expected found_inf for ", device.str(),
              " as one float32 on that device, got ", t.numel(), " ", dtype_name(t.dtype()), " on ",
              t.device().str());
  flags_.emplace_back(device, t);
  return flags_.back().second;
}

bool FoundInfScope::flag_set_on_host(Device device) {
  const Tensor t = flag(device);
  return t.defined() && t.item<float>() != 0.0f;
}

FusedStep::FusedStep(std::string name, backend::OptimHyper hyper, std::array<const char*, 3> slots)
    : name_(std::move(name)), hyper_(hyper), slots_(slots) {}

FusedStep::Bucket& FusedStep::bucket_for(const Tensor& param) {
  for (auto& b : buckets_)
    if (b.device == param.device() && b.dtype == param.dtype()) return b;
  buckets_.push_back({param.device(), param.dtype(), {}});
  if (FoundInfScope* scope = FoundInfScope::current())
    buckets_.back().tensors.found_inf = scope->flag(param.device());
  return buckets_.back();
}

void FusedStep::add(const Tensor& param, StateDict& state) {
  const Tensor& grad = param.grad();
  const Device device = param.device();
  ANVIL_CHECK(
      grad.device() == device && grad.dtype() == param.dtype() && grad.shape() == param.shape(),
      ValueError, name_,
      ".step: a gradient must match its parameter's device, dtype and "
      "shape; parameter ",
      to_string(param.shape()), " ", dtype_name(param.dtype()), " on ", device.str(),
      " has a gradient ", to_string(grad.shape()), " ", dtype_name(grad.dtype()), " on ",
      grad.device().str());
  const DType state_dtype = backend::optim_state_dtype(param.dtype());
  const TensorOptions state_opts = TensorOptions(state_dtype).device(device);
  FoundInfScope* scope = FoundInfScope::current();
  if (scope) {
    scope->count_handled();
    // A first update creates state; a skipped one must not (checked on the host, once).
    bool creates_state = hyper_.kind != backend::OptimKind::SGD && !state.count("step");
    for (const char* slot : slots_) creates_state |= slot && !state.count(slot);
    if (creates_state && scope->flag_set_on_host(device)) return;
  }
  Bucket& b = bucket_for(param);
  backend::OptimTensors& ts = b.tensors;

  bool fresh = false;
  for (size_t j = 0; j < slots_.size(); ++j) {
    if (!slots_[j]) continue;
    auto it = state.find(slots_[j]);
    if (it == state.end()) {
      fresh = hyper_.kind == backend::OptimKind::SGD;
      Tensor init = fresh ? Tensor::empty(param.shape(), state_opts)
                          : full(param.shape(), initial_value, state_opts);
      it = state.emplace(slots_[j], init).first;
    }
    ANVIL_CHECK(it->second.shape() == param.shape(), ValueError, name_, ".step: state \"",
                slots_[j], "\" has shape ", to_string(it->second.shape()),
                " but its parameter has shape ", to_string(param.shape()));
    conform(it->second, device, state_dtype);
    ts.slots[j].push_back(it->second);
  }
  // Counters: 0-dim float32 on the parameter's device, as PyTorch keeps them when fused.
  auto counter = [&](const char* key, double start) {
    auto it = state.find(key);
    if (it == state.end())
      it = state.emplace(key, full({}, start, TensorOptions(kFloat32).device(device))).first;
    ANVIL_CHECK(it->second.numel() == 1, ValueError, name_, ".step: state \"", key,
                "\" must hold one number, got ", it->second.numel());
    conform(it->second, device, kFloat32);
    return it->second;
  };
  if (hyper_.kind != backend::OptimKind::SGD) ts.steps.push_back(counter("step", 0.0));
  if (hyper_.kind == backend::OptimKind::NAdam)
    ts.mu_products.push_back(counter("mu_product", 1.0));

  Tensor p = param.detach();
  if (!p.is_contiguous()) {
    Tensor dense = p.contiguous();
    write_back_.emplace_back(p, dense);
    p = dense;
  }
  ts.params.push_back(p);
  ts.grads.push_back(grad.contiguous());
  ts.fresh.push_back(fresh);
}

void FusedStep::run(const std::function<Tensor(Device)>& lr) {
  for (auto& b : buckets_) {
    b.tensors.lr = lr(b.device);
    backend::optim_step_kernels[b.device](hyper_, b.tensors);
  }
  for (auto& [param, dense] : write_back_) param.copy_(dense);
}

}  // namespace anvil::optim::fused
