// Module: the base of every layer and model, as torch.nn.Module.
//
// A module owns named parameters (trainable tensors), buffers (state that is saved but not
// trained, such as batch norm's running statistics) and child modules. Names nest with dots,
// as in PyTorch: a Sequential whose first child is a Conv2d has the parameter "0.weight",
// and its state dict loads a PyTorch state dict of the same architecture without renaming.
//
// A user module derives from Module, registers its pieces in the constructor and overrides
// forward:
//
//   struct Block : nn::Module {
//     std::shared_ptr<nn::Linear> fc1, fc2;
//     Block() {
//       fc1 = register_module("fc1", std::make_shared<nn::Linear>(8, 8));
//       fc2 = register_module("fc2", std::make_shared<nn::Linear>(8, 8));
//     }
//     Tensor forward(const Tensor& x) override { return x + (*fc2)(relu((*fc1)(x))); }
//   };
//
// Registered tensors are handles shared with the module's members: `to()` and
// `load_state_dict()` change their data in place (Tensor::set_data / copy_), so the member,
// the registry and any optimizer holding the parameter keep seeing the same tensor. Do not
// assign a new tensor to a registered member; copy into it or set_data instead.
#pragma once
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "anvil/core/state_dict.h"
#include "anvil/core/tensor.h"

namespace anvil::nn {

class Module;
using ModulePtr = std::shared_ptr<Module>;

class Module : public std::enable_shared_from_this<Module> {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;  // modules share their tensors; copying would alias them
  Module& operator=(const Module&) = delete;

  // The computation. The base version throws Error (a module without a one-tensor forward).
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  // ---- registration (names are non-empty, without '.', unique within the module) ----
  // Adds a parameter; a defined floating tensor gets requires_grad. An undefined tensor
  // registers an absent parameter (like `bias=None`): kept in the name space but skipped by
  // parameters() and state_dict(). Returns the registered handle. Throws ValueError for a bad
  // or taken name, DTypeError for non-floating data.
  Tensor register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  // Adds a buffer (saved in the state dict, not trained). Undefined means absent.
  Tensor register_buffer(const std::string& name, Tensor t);
  // Adds a child module and returns it with its own type.
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }

  // ---- traversal (registration order; a tensor or module reachable twice is listed once) --
  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  std::vector<ModulePtr> children() const;
  const std::vector<std::pair<std::string, ModulePtr>>& named_children() const { return children_; }
  // This module (first, shared_from_this: the module must be owned by a shared_ptr) and all
  // its descendants, depth first.
  std::vector<ModulePtr> modules();
  // The same with dotted names; this module's name is "".
  std::vector<std::pair<std::string, ModulePtr>> named_modules();
  // Calls fn on every descendant, children first, then on this module (torch's apply).
  void apply(const std::function<void(Module&)>& fn);

  // ---- mode ----
  // Training mode (the default) or inference, for this module and every descendant.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // ---- gradients ----
  // Drops every parameter's gradient (undefined, like zero_grad(set_to_none=True)).
  void zero_grad();
  // Elements in all parameters (only those with requires_grad when trainable_only).
  int64_t num_parameters(bool trainable_only = false) const;

  // ---- state ----
  // Parameters and buffers by dotted name (detached handles sharing the module's data).
  StateDict state_dict() const;
  // Copies the values of `dict` into the parameters and buffers (converting dtype and
  // device). Throws ShapeError naming every key whose shape differs, and, when strict,
  // ValueError naming the missing and unexpected keys. Nothing is copied when it throws.
  void load_state_dict(const StateDict& dict, bool strict = true);

  // ---- placement (in place: every handle to a parameter stays valid) ----
  // Moves parameters, buffers and their gradients to `device`.
  Module& to(Device device);
  // Converts the floating-point parameters, buffers and gradients to `dtype` (a floating
  // dtype; integer buffers such as num_batches_tracked are kept). Throws DTypeError.
  Module& to(DType dtype);

  // ---- printing ----
  // The type name ("Linear"); by default the class name without namespaces.
  virtual std::string name() const;
  // The constructor arguments worth showing ("in_features=784, out_features=10, bias=true").
  virtual std::string extra_repr() const { return ""; }
  // The tree as PyTorch prints it:
  //   Sequential(
  //     (0): Linear(in_features=4, out_features=2, bias=true)
  //     (1): ReLU()
  //   )
  std::string str() const;

 protected:
  void add_child(const std::string& name, ModulePtr m);

 private:
  void check_new_name(const std::string& name, const char* what) const;
  // Appends the defined parameters (or buffers) under `prefix`; skips tensors already in
  // *seen (no de-duplication when seen is null, as in a state dict).
  void collect(const std::string& prefix, bool recurse, bool params,
               std::vector<std::pair<std::string, Tensor>>& out,
               std::vector<const TensorImpl*>* seen) const;
  // Replaces the data (and gradient) of every parameter and buffer t by fn(t), in place.
  void apply_to_tensors(const std::function<Tensor(const Tensor&)>& fn);

  bool training_ = true;
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, ModulePtr>> children_;
};

std::ostream& operator<<(std::ostream& os, const Module& m);

}  // namespace anvil::nn
