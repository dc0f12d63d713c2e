// CUDA graphs: record the CUDA work of a piece of code once, then run it again with a single
// launch (torch.cuda.CUDAGraph).
//
//   CUDAGraph graph;                 // on cuda:0
//   graph.capture_begin();
//   Tensor y = relu(matmul(x, w));   // recorded, not run: x, w must outlive the graph
//   graph.capture_end();
//   graph.replay();                  // runs it; y holds the result
//   x.copy_(next_input); graph.replay();   // same addresses, new data
//
// While capturing, tensors come from a memory pool private to the graph, which it keeps until
// reset() or destruction, since every replay writes to the same addresses. Random draws
// (dropout, rand) inside the capture take fresh numbers on every replay from the device's
// default generator. Captured code must not synchronise with the host (item(), copies to the
// CPU, errors checked on the host): capture_end() then throws DeviceError and the graph stays
// empty. Work runs on the calling thread's stream; capture and replay from the same thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "anvil/core/device.h"

namespace anvil {

namespace detail {
// The backend's side of a graph (the CUDA backend provides it).
class CUDAGraphImpl {
 public:
  virtual ~CUDAGraphImpl() = default;
  virtual void capture_begin() = 0;
  virtual void capture_end() = 0;
  virtual void replay() = 0;
  virtual void reset() = 0;
  virtual bool captured() const = 0;
  virtual bool capturing() const = 0;
  virtual size_t num_nodes() const = 0;
  virtual void debug_dump(const std::string& path) const = 0;
};
extern std::unique_ptr<CUDAGraphImpl> (*make_cuda_graph_hook)(int device);
}  // namespace detail

class CUDAGraph {
 public:
  // Throws DeviceError when anvil was built without CUDA or `device` does not exist.
  explicit CUDAGraph(Device device = Device(DeviceKind::CUDA, 0));
  ~CUDAGraph();
  CUDAGraph(const CUDAGraph&) = delete;
  CUDAGraph& operator=(const CUDAGraph&) = delete;

  void capture_begin();
  // Ends the capture and prepares the graph for replay. On a failed capture (the code
  // synchronised, or threw and left it open), throws DeviceError; the graph is then empty.
  void capture_end();
  // Runs the captured work on the device (asynchronously, like any kernel launch).
  void replay();
  // Drops the captured work and hands its memory pool back. Also ends an open capture.
  void reset();
  bool captured() const;
  bool capturing() const;
  // Operations (kernels, copies, memsets) in the captured graph: what one replay launches.
  size_t num_nodes() const;
  // Writes the captured graph as Graphviz DOT (kernel names, launch sizes) to `path`
  // (torch.cuda.CUDAGraph.debug_dump). Throws DeviceError when nothing is captured.
  void debug_dump(const std::string& path) const;

 private:
  std::unique_ptr<detail::CUDAGraphImpl> impl_;
};

}  // namespace anvil
