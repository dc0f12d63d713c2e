// GradScaler: dynamic loss scaling for float16 training, as torch.amp.GradScaler.
//
//   amp::GradScaler scaler(DeviceKind::CUDA);
//   for (...) {
//     opt.zero_grad();
//     Tensor loss;
//     { amp::autocast ac(DeviceKind::CUDA, kFloat16); loss = cross_entropy(model(x), y); }
//     scaler.scale(loss).backward();   // gradients of loss * scale: small ones survive float16
//     scaler.unscale_(opt);             // optional: before clip_grad_norm_
//     scaler.step(opt);                 // unscales if needed; skips the update on inf/NaN
//     scaler.update();                  // backs the scale off after an overflow, else grows it
//   }
//
// Everything happens on the device: the scale (0-dim float32, 2^16 to start) and the count of
// good steps in a row (0-dim int32) live there, unscale_ raises a per-device found_inf flag
// (0-dim float32) in the same multi-tensor pass that divides the gradients by the scale, the
// optimizer's fused update returns early on the device where the flag is set (parameters,
// state and step counters untouched), and update() adjusts the scale in one tiny kernel. So a
// whole step (scale, backward, unscale_, step, update) synchronises nothing with the host and
// can be captured in a CUDA graph once the optimizer has taken its first (eager) step; see
// Optimizer::step_unless_found_inf for the two host reads before that.
//
// bfloat16 autocast needs no scaling (bfloat16 has float32's exponent range); a GradScaler
// still works there, it just rarely changes anything. With enabled = false every method is a
// pass-through (step() is a plain opt.step()), so one code path serves both. As in PyTorch, a
// scaler for CUDA disables itself when no CUDA device is present.
//
// Difference from PyTorch: float16 gradients (float16 parameters) are unscaled here, where
// PyTorch refuses them ("Attempting to unscale FP16 gradients"); anvil's optimizers keep
// float32 state for 16-bit parameters. Float32 master weights are still the better recipe.
#pragma once
#include <cstdint>
#include <map>
#include <vector>

#include "anvil/core/state_dict.h"
#include "anvil/core/tensor.h"
#include "anvil/optim/optimizer.h"

namespace anvil::amp {

// PyTorch's defaults.
struct GradScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;   // > 1
  double backoff_factor = 0.5;  // in (0, 1)
  int64_t growth_interval = 2000;
  bool enabled = true;
};

class GradScaler {
 public:
  // Throws ValueError for growth_factor <= 1, backoff_factor outside (0, 1) or
  // growth_interval < 1.
  explicit GradScaler(DeviceKind device = DeviceKind::CUDA, GradScalerOptions options = {});

  // loss * scale (the scale is created on loss's device at the first call). Throws
  // DeviceError for a tensor on a device of another kind than the scaler's.
  Tensor scale(const Tensor& loss);
  // Divides the gradients of opt's parameters by the scale in place, in one multi-tensor
  // kernel per device and dtype, and records per device whether any was inf or NaN. At most
  // once per optimizer between update() calls, and not after step() (ValueError).
  void unscale_(optim::Optimizer& opt);
  // unscale_(opt) unless done, then opt.step_unless_found_inf(the flags): the update is
  // skipped on a device whose gradients overflowed. Once per optimizer between update()
  // calls (ValueError otherwise). Throws ValueError when no parameter of opt has a gradient
  // (PyTorch: "No inf checks were recorded for this optimizer").
  void step(optim::Optimizer& opt);
  // Updates the scale from the flags of every optimizer stepped since the last update: after
  // an overflow, scale *= backoff_factor and the good-step count restarts; after
  // growth_interval good steps in a row, scale *= growth_factor (unless that is inf). Throws
  // ValueError when nothing was unscaled since the last update().
  void update();
  // Sets the scale instead (PyTorch's update(new_scale)); `new_scale` may be a host number or
  // a one-element float32 tensor.
  void update(double new_scale);
  void update(const Tensor& new_scale);

  // The current scale (reads it back: a synchronisation), or the initial one before the
  // first scale(); 1 when disabled.
  double get_scale() const;
  // The scale as a 0-dim float32 tensor on its device (undefined before the first scale()).
  const Tensor& scale_tensor() const { return scale_; }
  double get_growth_factor() const { return growth_factor_; }
  void set_growth_factor(double v);
  double get_backoff_factor() const { return backoff_factor_; }
  void set_backoff_factor(double v);
  int64_t get_growth_interval() const { return growth_interval_; }
  void set_growth_interval(int64_t v);
  bool is_enabled() const { return enabled_; }

  // For tests and debugging (synchronises): whether the last unscale_ of opt since the last
  // update() found inf or NaN on any device. False before unscale_.
  bool found_inf_host(const optim::Optimizer& opt) const;

  // "scale" (0-dim float32), "growth_factor", "backoff_factor" (0-dim float64),
  // "growth_interval" (0-dim int64) and "_growth_tracker" (0-dim int32), as PyTorch names
  // them; all on the CPU. Empty when disabled.
  StateDict state_dict() const;
  // Restores a state_dict(). Does nothing when disabled. Throws ValueError for an empty dict
  // (saved from a disabled scaler) or a missing key.
  void load_state_dict(const StateDict& state_dict);

 private:
  enum class Stage { Ready, Unscaled, Stepped };
  // The flags of one optimizer since the last update(): one persistent tensor per device
  // (kept across updates, so a captured graph keeps valid addresses).
  struct PerOptimizer {
    Stage stage = Stage::Ready;
    std::vector<std::pair<Device, Tensor>> found_inf;  // recorded since the last update()
  };
  PerOptimizer& state_of(const optim::Optimizer& opt);
  const Tensor& flag_for(const optim::Optimizer& opt, Device device);
  void check_scale(const char* op) const;

  DeviceKind device_;
  bool enabled_;
  double init_scale_, growth_factor_, backoff_factor_;
  int64_t growth_interval_;
  int32_t init_growth_tracker_ = 0;
  Tensor scale_, growth_tracker_;  // created by the first scale()
  std::map<const optim::Optimizer*, PerOptimizer> per_optimizer_;
  struct Flag {
    const optim::Optimizer* opt;
    Device device;
    Tensor value;
  };
  std::vector<Flag> flags_;  // every flag ever made, reused by later steps
};

}  // namespace anvil::amp
