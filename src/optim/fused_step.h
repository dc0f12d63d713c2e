// The host side of the fused optimizer updates: gathers one parameter group's parameters
// (those with a gradient) and their state, creating missing state and moving stray state to
// the parameter's device and state dtype, then runs one optimizer_step kernel call per
// (device, dtype) of the parameters (see backend/optim_kernels.h for the formulas).
//
// Nothing here reads device memory, so a step can be captured in a CUDA graph once its state
// exists. A step that creates state (the first one) bakes that in (SGD's momentum buffer takes
// the gradient), so capture after a warm-up step, as GraphedStep does.
//
// Under a FoundInfScope (GradScaler's step) every kernel call also gets the scope's found_inf
// flag for its device and skips the update on the device where it is set.
#pragma once
#include <array>
#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "anvil/optim/optimizer.h"
#include "backend/optim_kernels.h"

namespace anvil::optim::fused {

class FusedStep {
 public:
  // `slots`: the state names of the kind's slots (see OptimTensors), nullptr where these
  // options don't use one. `name` prefixes error messages.
  FusedStep(std::string name, backend::OptimHyper hyper, std::array<const char*, 3> slots);

  // Value new state buffers start from (Adagrad's initial_accumulator_value); SGD's new
  // momentum buffer takes the gradient instead.
  double initial_value = 0;

  // Adds a parameter that has a gradient, with its state (completed here).
  void add(const Tensor& param, StateDict& state);
  // Runs the updates; lr(device) is the group's learning-rate tensor on that device.
  void run(const std::function<Tensor(Device)>& lr);

 private:
  struct Bucket {
    Device device;
    DType dtype;
    backend::OptimTensors tensors;
  };
  Bucket& bucket_for(const Tensor& param);

  std::string name_;
  backend::OptimHyper hyper_;
  std::array<const char*, 3> slots_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<Tensor, Tensor>> write_back_;  // non-contiguous param, dense copy
};

// While alive on this thread, FusedStep passes found_inf(device) (a 0-dim float32 tensor on
// that device, or undefined for none) to its kernel calls, which then change nothing where it
// is non-zero. A parameter with no state yet is the exception, since its first update creates
// state that a skipped step must not leave behind (PyTorch skips the whole step): its flag is
// read on the host and, when set, the parameter is left out. handled() counts the parameters
// FusedStep saw, so Optimizer can tell whether every update went through it.
class FoundInfScope {
 public:
  explicit FoundInfScope(std::function<Tensor(Device)> found_inf);
  ~FoundInfScope();
  FoundInfScope(const FoundInfScope&) = delete;
  FoundInfScope& operator=(const FoundInfScope&) = delete;

  static FoundInfScope* current();  // the innermost scope on this thread, or null
  // The flag for `device` (checked: 0-dim float32 on it), asked for once per device.
  Tensor flag(Device device);
  // The flag's value, read on the host (a synchronisation).
  bool flag_set_on_host(Device device);
  void count_handled() { ++handled_; }
  size_t handled() const { return handled_; }

 private:
  std::function<Tensor(Device)> found_inf_;
  std::vector<std::pair<Device, Tensor>> flags_;
  size_t handled_ = 0;
  FoundInfScope* outer_;
};

// The group option `key` as a flag (options hold flags as 0 or 1).
inline bool flag(const Options& o, const char* key) { return o.at(key) != 0; }

}  // namespace anvil::optim::fused
