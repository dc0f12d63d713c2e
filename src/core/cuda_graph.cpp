// The device-independent side of CUDAGraph; the CUDA backend sets the hook when linked in.
#include "anvil/core/cuda_graph.h"

#include "anvil/core/error.h"

namespace anvil {
namespace detail {
std::unique_ptr<CUDAGraphImpl> (*make_cuda_graph_hook)(int device) = nullptr;
}  // namespace detail

CUDAGraph::CUDAGraph(Device device) {
  ANVIL_CHECK(device.is_cuda(), DeviceError, "CUDAGraph: expected a CUDA device, got ",
              device.str());
  ANVIL_CHECK(detail::make_cuda_graph_hook, DeviceError,
              "CUDAGraph: this build of anvil has no CUDA backend");
  ANVIL_CHECK(device.index < cuda_device_count(), DeviceError, "CUDAGraph: ", device.str(),
              " is not available (this machine has ", cuda_device_count(), " CUDA devices)");
  impl_ = detail::make_cuda_graph_hook(device.index);
}

CUDAGraph::~CUDAGraph() = default;

void CUDAGraph::capture_begin() { impl_->capture_begin(); }
void CUDAGraph::capture_end() { impl_->capture_end(); }
void CUDAGraph::replay() { impl_->replay(); }
void CUDAGraph::reset() { impl_->reset(); }
bool CUDAGraph::captured() const { return impl_->captured(); }
bool CUDAGraph::capturing() const { return impl_->capturing(); }
size_t CUDAGraph::num_nodes() const { return impl_->num_nodes(); }
void CUDAGraph::debug_dump(const std::string& path) const { impl_->debug_dump(path); }

}  // namespace anvil
