// Optimizer: the base of anvil's optimizers, shaped like torch.optim.Optimizer.
//
// An optimizer holds parameter groups (each a list of leaf tensors with requires_grad and
// the hyper-parameters that apply to them) and per-parameter state (momentum buffers,
// moment estimates, step counts). step() updates every parameter that has a gradient, in
// place, on whatever device the parameters live on; parameters without a gradient are
// skipped, as in PyTorch. The update of a group is fused: one kernel call per device and
// dtype for all its parameters (on CUDA, multi-tensor kernels), not a chain of ops each.
//
// CUDA graphs: step() synchronises nothing with the host, and what changes from step to
// step is read on the device: each group's learning rate lives in a 0-dim float64 tensor the
// optimizer owns (lr_tensor()), which prepare_step() refreshes when the host value changed;
// step counters ("step", 0-dim float32 on the parameter's device) and NAdam's mu_product
// advance on the device. Other hyper-parameters are baked into a captured step: when
// hyper_version() changes, capture again. State of float16/bfloat16 parameters is float32.
//
// Hyper-parameters are numbers keyed by PyTorch's names ("lr", "momentum", "weight_decay",
// ...); Adam-style betas are "beta1" and "beta2"; flags (nesterov, amsgrad, centered,
// maximize) are 0 or 1. Each concrete optimizer has an options struct with PyTorch's defaults:
//
//   optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
//   optim::Adam opt({{{w1, b1}, {{"lr", 1e-2}}}, {{w2, b2}, {}}});  // two groups
//   loss.backward(); opt.step(); opt.zero_grad();
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "anvil/core/state_dict.h"
#include "anvil/core/tensor.h"

namespace anvil::optim {

// Hyper-parameters by name.
using Options = std::map<std::string, double>;

// Parameters that share hyper-parameters. `options` given at construction override the
// optimizer's defaults for this group; missing ones are filled in from the defaults.
struct ParamGroup {
  std::vector<Tensor> params;
  Options options;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient.
  virtual void step();
  // Calls `closure` (which must zero the gradients, recompute the loss, call backward and
  // return the loss) with gradient recording on, then steps. Returns the closure's loss.
  // LBFGS needs this form, since it evaluates the closure several times per step.
  virtual Tensor step(const std::function<Tensor()>& closure);
  // step(), skipped where the gradients overflowed (what amp::GradScaler::step runs):
  // found_inf(device) is a 0-dim float32 tensor on `device` (undefined: never skip there),
  // and on each device where it is non-zero the update changes nothing (parameters, state,
  // step counters), as a step PyTorch's GradScaler skips. The fused updates (every optimizer
  // here but LBFGS, which needs step(closure)) read the flag on the device, so the call
  // does not synchronise and a CUDA graph can hold it, with two exceptions that read the flags
  // on the host: a parameter's first update (so that a skipped one creates no state, as in
  // PyTorch), and the optimizer's first call, which learns whether every update goes through
  // the fused kernels. An optimizer whose update does not (a subclass with its own
  // update_group) reads the flags on the host on every call and steps only when all are 0.
  void step_unless_found_inf(const std::function<Tensor(Device)>& found_inf);
  // Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();

  // Writes each group's learning rate into its device tensors where the host value
  // (options["lr"], as set_lr() and schedulers change it) differs from the last one written:
  // one small asynchronous write per change, nothing otherwise, so calling it inside a
  // captured step captures nothing. step() calls it first; call it before replaying a graph
  // that contains step().
  void prepare_step();
  // Changes whenever a captured step would go stale other than by its learning rate: an option
  // other than lr changed (however it was changed), a group or parameter was added or removed,
  // or load_state_dict() replaced the state. Compare it with the value seen at capture time.
  uint64_t hyper_version() const;
  // Group `group`'s learning rate as a 0-dim float64 tensor on `device` (float64 so that the
  // device computes with exactly the host's value), created on first use and owned by the
  // optimizer; the fused updates read it there. Throws ValueError for a bad group index.
  Tensor lr_tensor(size_t group, Device device);

  // Adds a group; options it lacks are taken from the defaults. Throws ValueError for a
  // parameter already in another group, an unknown option name or a bad value.
  void add_param_group(ParamGroup group);
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  const Options& defaults() const { return defaults_; }
  const std::string& name() const { return name_; }

  // The learning rate of group 0, and setting it in every group.
  double lr() const;
  void set_lr(double lr);

  // The state of one parameter (empty until its first update), e.g. state(w).at("exp_avg").
  const StateDict& state(const Tensor& param) const;

  // "state.<i>.<name>" for the state of the i-th parameter (counted over all groups in order),
  // "param_groups.<g>.<option>" as 0-dim float64 tensors and "param_groups.<g>.params" as an
  // int64 list of the group's parameter indices. Tensors are copies.
  StateDict state_dict() const;
  // Restores a state_dict() of an optimizer of the same kind over parameters of the same
  // shapes, grouped alike; continuing then gives bit-identical results. Throws ValueError on
  // a group or parameter mismatch.
  void load_state_dict(const StateDict& state_dict);

 protected:
  // `defaults` holds every option the optimizer knows, with its default value. Concrete
  // optimizers call init() from their constructor body (virtual calls work from there).
  Optimizer(std::string name, Options defaults);
  void init(std::vector<ParamGroup> groups);
  // Throws ValueError for a bad option value (messages name the optimizer and the value).
  virtual void validate(const Options& options) const {}
  // Updates the parameters of group `group` that have a gradient (`params`, in group order)
  // in place, reading the learning rate from lr_tensor(); called under NoGradGuard after
  // prepare_step().
  virtual void update_group(size_t group, const std::vector<Tensor>& params) = 0;
  StateDict& mutable_state(const Tensor& param) { return state_[param.impl()]; }

  // All parameters over all groups, in order.
  std::vector<Tensor> all_params() const;

  std::string name_;
  Options defaults_;
  std::vector<ParamGroup> groups_;
  std::map<const TensorImpl*, StateDict> state_;

 private:
  // A group's learning rate on one device, and the host value last written to it.
  struct DeviceLr {
    Device device;
    Tensor value;
    double written;
  };
  std::vector<std::vector<DeviceLr>> lr_tensors_;  // per group
  // What hyper_version() last saw: per group, the options but lr and the parameters.
  struct GroupShape {
    Options options;
    std::vector<const TensorImpl*> params;
    bool operator==(const GroupShape&) const = default;
  };
  mutable std::vector<GroupShape> seen_groups_;
  mutable uint64_t hyper_version_ = 0;
  // Whether every update of step() honours a found_inf flag on the device: -1 not known yet,
  // 0 no, 1 yes (see step_unless_found_inf).
  int skips_on_device_ = -1;
};

// Wraps a flat parameter list as a single group with no overrides.
std::vector<ParamGroup> single_group(std::vector<Tensor> params);

// Reads a step counter ("step", a 0-dim float32 tensor as PyTorch keeps it), adding one. A
// host round trip: the fused optimizers advance their counters on the device instead.
double increment_step(StateDict& state);

// An optimizer by name, with PyTorch's defaults and the given learning rate: "sgd", "adam",
// "adamw", "rmsprop", "adagrad", "adadelta", "nadam", "lbfgs" (case-insensitive). Throws
// ValueError for any other name, listing the known ones.
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<Tensor> params,
                                          double lr);

}  // namespace anvil::optim
