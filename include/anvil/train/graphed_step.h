// GraphedStep: a training step that runs eagerly while it warms up and then as a CUDA graph,
// one launch per step (one graph per distinct batch shape, so a last partial batch gets its
// own instead of breaking the others).
//
//   GraphedStep step(device, [&](const Tensor& x, const Tensor& y) {
//     Tensor loss = cross_entropy((*model)(x), y);
//     loss.backward(); opt.step(); opt.zero_grad();
//     loss_sum.add_(loss.detach());   // results go to tensors that outlive the step
//   });
//   for (auto& b : loader) step(b.input, b.target);
//
// The step function must be replayable: the same work for the same shapes, no host
// synchronisation, results written into tensors allocated before the step, and the state it
// reads created during warm-up (optimizer moments exist after the first step). Parameters,
// optimizer state and anything else the graphs write to are identified by `signature`: when
// it changes (parameters replaced by load_state_dict, hyper-parameters changed), the graphs
// are captured again. On a CPU device, or with graphs switched off, every call is eager. If a
// capture fails, graphs are switched off and the step runs eagerly, so the step function must
// be safe to run again after it threw or was only captured (start it with zero_grad()).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "anvil/core/cuda_graph.h"
#include "anvil/core/tensor.h"

namespace anvil::train {

class GraphedStep {
 public:
  using StepFn = std::function<void(const Tensor& x, const Tensor& y)>;
  using SignatureFn = std::function<uint64_t()>;

  // `warmup`: eager calls per batch shape before capturing (at least 1: lazily created state
  // and library plans must exist before a capture). `max_graphs`: distinct shapes kept.
  GraphedStep(Device device, StepFn step, SignatureFn signature = {}, bool enabled = true,
              int warmup = 2, size_t max_graphs = 4);
  ~GraphedStep();

  // One step on (x, y), from the host or the device. Replays copy them into the graph's
  // static inputs first: the batch is all a replayed step moves (host to device, or device to
  // device when data::DevicePrefetcher has uploaded it already).
  void operator()(const Tensor& x, const Tensor& y);
  // Forgets every graph (the next calls warm up and capture again).
  void reset();

  // False on a CPU device, when switched off, or after a capture failed: the step then
  // synchronises with the host somewhere, and disabled_reason() says how capture failed.
  bool enabled() const { return enabled_; }
  const std::string& disabled_reason() const { return disabled_reason_; }
  // Steps run by replaying a graph, and captures made, so far.
  int64_t replays() const { return replays_; }
  int64_t captures() const { return captures_; }
  // Operations one replay of the most recently captured graph launches (0: none captured).
  size_t graph_nodes() const { return graph_nodes_; }
  // debug_dump (CUDAGraph) of the most recently used graph; false when there is none.
  bool debug_dump(const std::string& path) const;

 private:
  struct Entry;
  Entry& entry_for(const Tensor& x, const Tensor& y);
  void capture(Entry& e);

  Device device_;
  StepFn step_;
  SignatureFn signature_;
  bool enabled_;
  int warmup_;
  size_t max_graphs_;
  std::vector<std::unique_ptr<Entry>> entries_;  // most recently used last
  uint64_t signature_value_ = 0;
  std::string disabled_reason_;
  int64_t replays_ = 0, captures_ = 0;
  size_t graph_nodes_ = 0;
};

}  // namespace anvil::train
