// CUDA graphs (anvil/core/cuda_graph.h): stream capture on the backend's stream, a private
// memory pool in the caching allocator, and graph-relative random draws.
#include <atomic>
#include <string>

#include "anvil/core/cuda_graph.h"
#include "anvil/core/generator.h"
#include "anvil/core/tensor.h"
#include "backend/cuda/caching_allocator.h"
#include "backend/cuda/capture.h"
#include "backend/cuda/graph_rng.h"
#include "backend/cuda/runtime.h"
#include "backend/cuda/stream.h"

namespace anvil::cuda {
namespace {

std::atomic<uint64_t> g_next_graph_id{1};
thread_local std::string t_capture_failure;  // see capture.h
thread_local bool t_capturing = false;        // a CUDAGraph of this thread is capturing

class Graph final : public detail::CUDAGraphImpl {
 public:
  explicit Graph(int device) : device_(device) {}
  ~Graph() override {
    try {
      reset();
    } catch (...) {  // nothing to report to from a destructor
    }
  }

  void capture_begin() override {
    ANVIL_CHECK(!capturing_, DeviceError, "CUDAGraph::capture_begin: already capturing");
    reset();
    DeviceGuard guard(device_);
    // {seed, base} of the device generator's draws, written before each replay. Allocated
    // outside the graph's pool: it belongs to the graph object, not to the captured work.
    if (!rng_state_.defined())
      rng_state_ = Tensor::empty({2}, TensorOptions(kInt64).device(Device(DeviceKind::CUDA, device_)));
    // Work enqueued before the capture finishes first (and its device errors surface here,
    // not later as if the captured work had caused them).
    synchronize(device_);
    take_capture_failure();
    pool_id_ = g_next_graph_id.fetch_add(1);
    generator().begin_capture(static_cast<const uint64_t*>(rng_state_.data_ptr()));
    caching_allocator_begin_capture(device_, pool_id_);
    const cudaError_t err =
        cudaStreamBeginCapture(current_stream(), cudaStreamCaptureModeThreadLocal);
    if (err != cudaSuccess) {
      caching_allocator_end_capture(device_);
      caching_allocator_release_pool(device_, pool_id_);
      generator().end_capture();
      check(err, "cudaStreamBeginCapture");
    }
    capturing_ = true;
    t_capturing = true;
  }

  void capture_end() override {
    ANVIL_CHECK(capturing_, DeviceError, "CUDAGraph::capture_end: no capture is open");
    DeviceGuard guard(device_);
    capturing_ = false;
    t_capturing = false;
    rng_blocks_ = generator().end_capture();
    // The graph's last node moves its draw base on, so that consecutive replays need no copy
    // of the generator state from the host (replay()).
    if (rng_blocks_ > 0)
      advance_rng_base(static_cast<uint64_t*>(rng_state_.data_ptr()), rng_blocks_,
                       current_stream());
    const cudaError_t err = cudaStreamEndCapture(current_stream(), &graph_);
    caching_allocator_end_capture(device_);
    const std::string refused = take_capture_failure();
    if (!refused.empty() && err == cudaSuccess) {
      reset();
      throw DeviceError("CUDAGraph::capture_end: the capture failed: " + refused);
    }
    if (err != cudaSuccess || !graph_) {
      cudaGetLastError();
      reset();
      throw DeviceError(std::string("CUDAGraph::capture_end: the capture failed (") +
                        cudaGetErrorName(err) + ": " + cudaGetErrorString(err) +
                        "); the captured code must not synchronise with the host");
    }
    const cudaError_t inst = cudaGraphInstantiate(&exec_, graph_, 0);
    if (inst != cudaSuccess) {
      cudaGetLastError();
      reset();
      check(inst, "cudaGraphInstantiate");
    }
  }

  void replay() override {
    ANVIL_CHECK(exec_, DeviceError, "CUDAGraph::replay: nothing has been captured");
    DeviceGuard guard(device_);
    if (rng_blocks_ > 0) {
      Generator& g = generator();
      const uint64_t seed = g.seed(), base = g.reserve(rng_blocks_);
      // The device holds {seed, base} already when nothing drew from the generator since the
      // last replay (which advanced the base itself); otherwise write it. A pageable source is
      // staged by the driver before the call returns, so the array may go out of scope.
      if (!device_state_known_ || seed != device_seed_ || base != device_base_) {
        const uint64_t state[2] = {seed, base};
        ANVIL_CUDA_CHECK(cudaMemcpyAsync(rng_state_.data_ptr(), state, sizeof state,
                                         cudaMemcpyHostToDevice, current_stream()));
      }
      ANVIL_CUDA_CHECK(cudaGraphLaunch(exec_, current_stream()));
      device_state_known_ = true;
      device_seed_ = seed;
      device_base_ = base + rng_blocks_;
      return;
    }
    ANVIL_CUDA_CHECK(cudaGraphLaunch(exec_, current_stream()));
  }

  void reset() override {
    DeviceGuard guard(device_);
    if (capturing_) {  // abandoned mid-capture (the captured code threw)
      capturing_ = false;
      t_capturing = false;
      cudaGraph_t g = nullptr;
      cudaStreamEndCapture(current_stream(), &g);
      if (g) cudaGraphDestroy(g);
      cudaGetLastError();
      caching_allocator_end_capture(device_);
      generator().end_capture();
    }
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
    exec_ = nullptr;
    graph_ = nullptr;
    rng_blocks_ = 0;
    device_state_known_ = false;
    if (pool_id_) {
      // A replay may still be running: its memory returns only after it has finished.
      cudaStreamSynchronize(current_stream());
      caching_allocator_release_pool(device_, pool_id_);
      pool_id_ = 0;
    }
  }

  bool captured() const override { return exec_ != nullptr; }
  bool capturing() const override { return capturing_; }
  void debug_dump(const std::string& path) const override {
    ANVIL_CHECK(graph_, DeviceError, "CUDAGraph::debug_dump: nothing has been captured");
    check(cudaGraphDebugDotPrint(graph_, path.c_str(), cudaGraphDebugDotFlagsVerbose),
          "cudaGraphDebugDotPrint");
  }

  size_t num_nodes() const override {
    size_t n = 0;
    if (graph_) ANVIL_CUDA_CHECK(cudaGraphGetNodes(graph_, nullptr, &n));
    return n;
  }

 private:
  Generator& generator() const { return default_generator(Device(DeviceKind::CUDA, device_)); }

  const int device_;
  bool capturing_ = false;
  uint64_t pool_id_ = 0;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  Tensor rng_state_;
  uint64_t rng_blocks_ = 0;
  // What rng_state_ holds once the replays enqueued so far have run (their last node advances
  // the base): a replay that would write the same skips the host-to-device copy.
  bool device_state_known_ = false;
  uint64_t device_seed_ = 0, device_base_ = 0;
};

const bool g_registered = [] {
  detail::make_cuda_graph_hook = [](int device) -> std::unique_ptr<detail::CUDAGraphImpl> {
    return std::make_unique<Graph>(device);
  };
  return true;
}();

}  // namespace

bool stream_is_capturing() {
  if (t_capturing) return true;
  // A capture begun directly with cudaStreamBeginCapture, not through CUDAGraph.
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(current_stream(), &status) != cudaSuccess) {
    cudaGetLastError();  // let the call that follows report what is wrong
    return false;
  }
  return status != cudaStreamCaptureStatusNone;
}

void refuse_in_capture(const char* what) {
  if (!stream_is_capturing()) return;
  const std::string msg = std::string(what) + " cannot be captured into a CUDA graph";
  if (t_capture_failure.empty()) t_capture_failure = msg;
  throw DeviceError(msg);
}

std::string take_capture_failure() {
  std::string s = std::move(t_capture_failure);
  t_capture_failure.clear();
  return s;
}

}  // namespace anvil::cuda
