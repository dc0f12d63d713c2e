#include "anvil/autograd/node.h"

#include "anvil/autograd/grad_mode.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"

namespace anvil::autograd {

std::vector<Tensor> AccumulateGrad::apply(const Tensor& grad_output) {
  auto impl = leaf_.lock();
  if (!impl) return {};
  Tensor leaf(impl);
  // Stored as a fresh dense tensor in the leaf's own layout (row-major, or channels-last for
  // a channels-last leaf, as PyTorch keeps it): the incoming gradient may alias another's.
  Tensor g = grad_output.to(leaf.dtype());
  if (impl->grad.defined()) {
    impl->grad = add(impl->grad, g);
  } else {
    const MemoryFormat format = leaf.suggest_memory_format();
    if (g.is_same(grad_output) || !g.is_contiguous(format)) {
      Tensor fresh = Tensor::empty(g.shape(), g.options(), format);
      fresh.copy_(g);
      g = fresh;
    }
    impl->grad = g;
  }
  return {};
}

std::vector<Tensor> FunctionNode::apply(const Tensor& grad_output) {
  if (!fn_)
    throw AutogradError("backward: trying to backward through the graph of " + name() +
                        " a second time (its saved tensors were freed); pass retain_graph=true "
                        "to the first backward");
  return fn_(grad_output);
}

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

std::vector<Tensor> SliceNode::apply(const Tensor& grad_output) {
  const TensorOptions opts = TensorOptions(input_meta[0].dtype).device(grad_output.device());
  Tensor whole = zeros(input_meta[0].shape, opts);
  whole.slice(dim, start, end, step).copy_(grad_output);
  return {whole};
}

void SliceNode::add_into(Tensor& whole, const Tensor& grad_output) const {
  Tensor part = whole.slice(dim, start, end, step);
  add_(part, grad_output);
}

Tensor record(const char* name, Tensor out, const std::vector<Tensor>& inputs,
              BackwardFn backward) {
  if (!needs_grad(inputs)) return out;
  return record(std::make_shared<FunctionNode>(name, std::move(backward)), std::move(out), inputs);
}

Tensor record(std::shared_ptr<Node> node, Tensor out, const std::vector<Tensor>& inputs) {
  if (!needs_grad(inputs)) return out;
  node->next.reserve(inputs.size());
  node->input_meta.reserve(inputs.size());
  for (const Tensor& in : inputs) {
    if (in.defined() && in.requires_grad()) {
      node->next.push_back(in.grad_fn() ? in.grad_fn() : std::make_shared<AccumulateGrad>(in));
      node->input_meta.push_back({in.shape(), in.dtype()});
    } else {
      node->next.push_back(nullptr);
      node->input_meta.push_back({});
    }
  }
  out.set_grad_fn(std::move(node));
  return out;
}

}  // namespace anvil::autograd
