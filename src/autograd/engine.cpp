// The backward engine: runs the recorded graph in reverse topological order, summing the
// gradients that reach each node before it runs.
#include <unordered_map>
#include <unordered_set>

#include "anvil/autograd/grad_mode.h"
#include "anvil/autograd/node.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/reduction.h"

namespace anvil::autograd {
namespace {

// Where gradients of torch.autograd.grad-style calls are captured instead of accumulated.
struct Capture {
  std::vector<Tensor> inputs;
  std::vector<Tensor> results;
};

Tensor conform(const Tensor& g, const Node::InputMeta& meta, const std::string& op) {
  Tensor r = g;
  if (r.shape() != meta.shape) {
    try {
      r = sum_to(r, meta.shape);
    } catch (const ShapeError&) {
      throw AutogradError("backward of " + op + ": gradient of shape " + to_string(g.shape()) +
                          " does not fit its input of shape " + to_string(meta.shape));
    }
  }
  return r.dtype() == meta.dtype ? r : r.to(meta.dtype);
}

void execute(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
             bool retain_graph, Capture* capture) {
  NoGradGuard no_grad;
  // Count, for every reachable node, how many edges lead into it.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack;
  std::unordered_set<Node*> seen;
  for (const Tensor& r : roots)
    if (r.grad_fn() && seen.insert(r.grad_fn().get()).second) stack.push_back(r.grad_fn().get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (auto& nx : n->next) {
      if (!nx) continue;
      ++deps[nx.get()];
      if (seen.insert(nx.get()).second) stack.push_back(nx.get());
    }
  }
  std::unordered_map<Node*, Tensor> buffer;
  // Buffers that only the engine holds (made by the sums below), which may be added to in place.
  std::unordered_set<Node*> owned;
  auto deposit = [&](Node* n, const Tensor& g) {
    auto it = buffer.find(n);
    if (it == buffer.end()) {
      buffer.emplace(n, g);
    } else {
      it->second = add(it->second, g);
      owned.insert(n);
    }
  };
  // A slice's gradient goes straight into its input's buffer: added in place to one the engine
  // owns, else into a copy of the buffer there (or zeros), which the engine then owns.
  auto deposit_slice = [&](const SliceNode& s, const Tensor& g) {
    Node* nx = s.next[0].get();
    const Node::InputMeta& meta = s.input_meta[0];
    auto it = buffer.find(nx);
    Tensor whole;
    if (it != buffer.end() && owned.count(nx)) {
      whole = it->second;
    } else {
      whole = Tensor::empty(meta.shape, TensorOptions(meta.dtype).device(g.device()));
      if (it != buffer.end()) whole.copy_(it->second);
      else whole.zero_();
      buffer[nx] = whole;
      owned.insert(nx);
    }
    s.add_into(whole, g.dtype() == meta.dtype ? g : g.to(meta.dtype));
  };
  std::unordered_map<Node*, std::shared_ptr<Node>> owners;  // keeps nodes alive while queued
  std::vector<Node*> ready;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    if (!r.grad_fn()) {
      // A leaf as root: its gradient is the given one.
      if (capture) {
        for (size_t k = 0; k < capture->inputs.size(); ++k)
          if (capture->inputs[k].is_same(r)) capture->results[k] = grads[i];
      } else {
        AccumulateGrad(r).apply(grads[i]);
      }
      continue;
    }
    deposit(r.grad_fn().get(), grads[i]);
    owners[r.grad_fn().get()] = r.grad_fn();
  }
  for (auto& [n, o] : owners)
    if (deps[n] == 0) ready.push_back(n);

  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    [[maybe_unused]] std::shared_ptr<Node> hold = owners[n];  // alive while it runs
    owners.erase(n);
    std::vector<Tensor> out;
    auto it = buffer.find(n);
    if (it != buffer.end()) {  // else no gradient reached n: only its dependants are released
      Tensor g = it->second;
      buffer.erase(it);
      owned.erase(n);
      if (auto t = n->retained.lock()) t->grad = g;
      if (auto* acc = dynamic_cast<AccumulateGrad*>(n)) {
        if (capture) {
          auto leaf = acc->leaf();
          for (size_t k = 0; k < capture->inputs.size(); ++k)
            if (leaf && capture->inputs[k].impl_ptr() == leaf)
              capture->results[k] =
                  capture->results[k].defined() ? add(capture->results[k], g) : g;
        } else {
          acc->apply(g);
        }
      } else {
        if (capture)
          for (size_t k = 0; k < capture->inputs.size(); ++k)
            if (capture->inputs[k].grad_fn().get() == n) capture->results[k] = g;
        auto* slice = dynamic_cast<SliceNode*>(n);
        if (slice && slice->next[0]) deposit_slice(*slice, g);
        else out = n->apply(g);
        if (!retain_graph) n->release();
      }
    }
    for (size_t i = 0; i < n->next.size(); ++i) {
      Node* nx = n->next[i].get();
      if (!nx) continue;
      owners.emplace(nx, n->next[i]);
      if (i < out.size() && out[i].defined())
        deposit(nx, conform(out[i], n->input_meta[i], n->name()));
      if (--deps[nx] == 0) ready.push_back(nx);
    }
  }
}

std::vector<Tensor> default_grads(const std::vector<Tensor>& roots,
                                  const std::vector<Tensor>& grads) {
  std::vector<Tensor> g(roots.size());
  for (size_t i = 0; i < roots.size(); ++i) {
    ANVIL_CHECK(roots[i].requires_grad(), AutogradError,
                "backward: tensor ", i, " does not require grad and has no grad_fn");
    if (i < grads.size() && grads[i].defined()) {
      ANVIL_CHECK(grads[i].shape() == roots[i].shape(), ShapeError, "backward: gradient shape ",
                  to_string(grads[i].shape()), " does not match output shape ",
                  to_string(roots[i].shape()));
      g[i] = grads[i];
    } else {
      ANVIL_CHECK(roots[i].numel() == 1, AutogradError,
                  "backward: a gradient can be implied only for one-element outputs, got shape ",
                  to_string(roots[i].shape()), "; pass a gradient");
      g[i] = ones_like(roots[i]);
    }
  }
  return g;
}

}  // namespace

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                  bool retain_graph) {
  execute(roots, default_grads(roots, grads), retain_graph, nullptr);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph) {
  Capture cap{inputs, std::vector<Tensor>(inputs.size())};
  for (const Tensor& in : inputs)
    ANVIL_CHECK(in.requires_grad(), AutogradError,
                "grad: every input must require grad (one of shape ", to_string(in.shape()),
                " does not)");
  execute(outputs, default_grads(outputs, grad_outputs), retain_graph, &cap);
  for (size_t k = 0; k < inputs.size(); ++k)
    if (!cap.results[k].defined()) cap.results[k] = zeros_like(inputs[k]);
  return cap.results;
}

}  // namespace anvil::autograd

namespace anvil {
void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  autograd::run_backward({*this}, {gradient}, retain_graph);
}
}  // namespace anvil
