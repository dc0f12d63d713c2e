// A node of the autograd graph: the backward of one op. Every node has exactly one output
// (ops with several outputs, such as split, are built from single-output views).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "anvil/autograd/grad_mode.h"
#include "anvil/core/tensor.h"

namespace anvil::autograd {

class Node {
 public:
  explicit Node(std::string name) : name_(std::move(name)) {}
  virtual ~Node() = default;
  // Gradients with respect to each input, given the gradient of the output. An undefined
  // tensor means "no gradient" for that input.
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // Frees saved tensors after a backward pass that does not retain the graph.
  virtual void release() {}

  const std::string& name() const { return name_; }
  // One entry per input of the op; null where the input needs no gradient.
  std::vector<std::shared_ptr<Node>> next;
  // Shape and dtype of each input: the engine sums a gradient back to its input's shape
  // (undoing broadcasting) and casts it to its input's dtype.
  struct InputMeta {
    Shape shape;
    DType dtype;
  };
  std::vector<InputMeta> input_meta;
  // The non-leaf tensor this node produced, when it asked to keep its gradient (retain_grad).
  std::weak_ptr<TensorImpl> retained;

 private:
  std::string name_;
};

// Accumulates the incoming gradient into a leaf tensor's .grad.
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(const Tensor& leaf)
      : Node("AccumulateGrad"), leaf_(leaf.impl_ptr()) {}
  std::vector<Tensor> apply(const Tensor& grad_output) override;
  std::shared_ptr<TensorImpl> leaf() const { return leaf_.lock(); }

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

// A node whose backward is a closure (the closure holds what the op saved).
class FunctionNode : public Node {
 public:
  FunctionNode(std::string name, BackwardFn fn) : Node(std::move(name)), fn_(std::move(fn)) {}
  std::vector<Tensor> apply(const Tensor& grad_output) override;
  void release() override { fn_ = nullptr; }

 private:
  BackwardFn fn_;
};

// The backward of Tensor::slice (and so of narrow, select, split and chunk): the gradient of
// the slice is placed in zeros of the input's shape. The engine knows it: when several slices
// of one tensor get gradients (q, k and v cut from one projection, an LSTM's gates), it adds
// each into the input's gradient buffer in place instead of making a full-size tensor per
// slice and summing those.
class SliceNode : public Node {
 public:
  SliceNode(int64_t dim, int64_t start, int64_t end, int64_t step)
      : Node("SliceBackward"), dim(dim), start(start), end(end), step(step) {}
  std::vector<Tensor> apply(const Tensor& grad_output) override;
  // `whole` (the input's shape) gets grad_output added over the slice.
  void add_into(Tensor& whole, const Tensor& grad_output) const;
  const int64_t dim, start, end, step;
};

// True when grad mode is on and any input requires grad: then the op must record.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Records `out` as produced by op `name` from `inputs`; `backward` maps the output gradient to
// one gradient per input (same order; undefined where none). Does nothing when no input
// requires grad or grad mode is off. Returns `out`.
Tensor record(const char* name, Tensor out, const std::vector<Tensor>& inputs, BackwardFn backward);
// The same with a node of the caller's making (its next and input_meta are filled in here).
Tensor record(std::shared_ptr<Node> node, Tensor out, const std::vector<Tensor>& inputs);

// Runs backward from `roots` with the given output gradients.
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                  bool retain_graph);

// Gradients of `outputs` with respect to `inputs` without touching .grad (torch.autograd.grad).
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false);

}  // namespace anvil::autograd
