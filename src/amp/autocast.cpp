// The per-thread autocast state and the guard that sets it.
#include "anvil/amp/autocast.h"

#include "amp/autocast_ops.h"
#include "anvil/core/error.h"

namespace anvil::amp {
namespace {

struct State {
  bool enabled[kNumDeviceKinds] = {false, false};
  DType dtype[kNumDeviceKinds] = {kBFloat16, kFloat16};  // CPU, CUDA: PyTorch's defaults
  int excluded = 0;  // > 0 while an autocast op runs: ops it calls are not cast again
};
static_assert(int(DeviceKind::CPU) == 0 && int(DeviceKind::CUDA) == 1);
thread_local State g_state;

void check_dtype(DType dtype) {
  ANVIL_CHECK(dtype == kFloat16 || dtype == kBFloat16, DTypeError,
              "autocast: expected dtype float16 or bfloat16, got ", dtype_name(dtype));
}

}  // namespace

bool is_autocast_enabled(DeviceKind device) { return g_state.enabled[int(device)]; }
DType autocast_dtype(DeviceKind device) { return g_state.dtype[int(device)]; }

void set_autocast_enabled(DeviceKind device, bool enabled) {
  g_state.enabled[int(device)] = enabled;
}

void set_autocast_dtype(DeviceKind device, DType dtype) {
  check_dtype(dtype);
  g_state.dtype[int(device)] = dtype;
}

autocast::autocast(DeviceKind device, std::optional<DType> dtype, bool enabled)
    : device_(device),
      prev_enabled_(is_autocast_enabled(device)),
      prev_dtype_(autocast_dtype(device)) {
  // Checked before anything changes, so a bad dtype leaves the state alone.
  if (dtype) check_dtype(*dtype);
  if (dtype) g_state.dtype[int(device)] = *dtype;
  g_state.enabled[int(device)] = enabled;
}

autocast::~autocast() {
  g_state.enabled[int(device_)] = prev_enabled_;
  g_state.dtype[int(device_)] = prev_dtype_;
}

namespace detail {

bool autocast_active(std::initializer_list<const Tensor*> inputs) {
  const State& s = g_state;
  if (s.excluded > 0 || !(s.enabled[0] || s.enabled[1])) return false;
  for (const Tensor* t : inputs)
    if (t->defined()) return s.enabled[int(t->device().kind)];
  return false;
}

AutocastExclude::AutocastExclude() { ++g_state.excluded; }
AutocastExclude::~AutocastExclude() { --g_state.excluded; }

Tensor autocast_cast(const Tensor& t, CastPolicy policy, DType widest) {
  if (!t.defined() || !t.is_floating_point() || t.dtype() == kFloat64) return t;
  switch (policy) {
    case CastPolicy::LowerPrecision:
      return t.to(autocast_dtype(t.device().kind));
    case CastPolicy::Float32:
      return t.to(kFloat32);
    case CastPolicy::Promote:
      return t.to(widest);
  }
  return t;
}

}  // namespace detail
}  // namespace anvil::amp
