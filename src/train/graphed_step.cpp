#include "anvil/train/graphed_step.h"

#include <algorithm>

#include "anvil/core/error.h"

namespace anvil::train {

struct GraphedStep::Entry {
  Shape x_shape, y_shape;
  DType x_dtype, y_dtype;
  MemoryFormat x_format;  // a channels-last batch gets a channels-last static input
  int eager_runs = 0;
  Tensor x, y;  // the static inputs the graph reads
  std::unique_ptr<CUDAGraph> graph;
};

GraphedStep::GraphedStep(Device device, StepFn step, SignatureFn signature, bool enabled,
                         int warmup, size_t max_graphs)
    : device_(device),
      step_(std::move(step)),
      signature_(std::move(signature)),
      enabled_(enabled && device.is_cuda()),
      warmup_(std::max(1, warmup)),
      max_graphs_(std::max<size_t>(1, max_graphs)) {
  ANVIL_CHECK(step_ != nullptr, ValueError, "GraphedStep: the step function is empty");
}

GraphedStep::~GraphedStep() = default;

bool GraphedStep::debug_dump(const std::string& path) const {
  if (entries_.empty() || !entries_.back()->graph || !entries_.back()->graph->captured())
    return false;
  entries_.back()->graph->debug_dump(path);
  return true;
}

void GraphedStep::reset() { entries_.clear(); }

GraphedStep::Entry& GraphedStep::entry_for(const Tensor& x, const Tensor& y) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    Entry& e = **it;
    if (e.x_shape == x.shape() && e.y_shape == y.shape() && e.x_dtype == x.dtype() &&
        e.y_dtype == y.dtype() && e.x_format == x.suggest_memory_format()) {
      std::rotate(it, it + 1, entries_.end());  // most recently used last
      return *entries_.back();
    }
  }
  if (entries_.size() >= max_graphs_) entries_.erase(entries_.begin());
  auto e = std::make_unique<Entry>();
  e->x_shape = x.shape();
  e->y_shape = y.shape();
  e->x_dtype = x.dtype();
  e->y_dtype = y.dtype();
  e->x_format = x.suggest_memory_format();
  entries_.push_back(std::move(e));
  return *entries_.back();
}

void GraphedStep::capture(Entry& e) {
  // Static inputs live outside the graph's pool, for as long as the entry.
  e.x = Tensor::empty(e.x_shape, TensorOptions(e.x_dtype).device(device_), e.x_format);
  e.y = Tensor::empty(e.y_shape, TensorOptions(e.y_dtype).device(device_));
  e.graph = std::make_unique<CUDAGraph>(device_);
  e.graph->capture_begin();
  try {
    step_(e.x, e.y);
  } catch (...) {
    e.graph->reset();
    throw;
  }
  e.graph->capture_end();
  ++captures_;
  graph_nodes_ = e.graph->num_nodes();
}

void GraphedStep::operator()(const Tensor& x, const Tensor& y) {
  if (!enabled_) {
    step_(x.to(device_), y.to(device_));
    return;
  }
  if (signature_) {
    const uint64_t s = signature_();
    if (s != signature_value_) {
      reset();
      signature_value_ = s;
    }
  }
  Entry& e = entry_for(x, y);
  if (!e.graph) {
    if (e.eager_runs < warmup_) {
      ++e.eager_runs;
      step_(x.to(device_), y.to(device_));
      return;
    }
    try {
      capture(e);  // records the step without running it; the replay below runs it
    } catch (const DeviceError& err) {
      // Something in the step cannot be captured (it synchronises with the host). Nothing
      // captured has run, so the step runs eagerly now, and from now on.
      entries_.clear();
      enabled_ = false;
      disabled_reason_ = err.what();
      step_(x.to(device_), y.to(device_));
      return;
    }
  }
  e.x.copy_(x);
  e.y.copy_(y);
  e.graph->replay();
  ++replays_;
}

}  // namespace anvil::train
