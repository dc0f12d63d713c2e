// Lazily created per-device cuBLASLt/cuDNN handles, library workspaces, and the TF32 switch.
#include "backend/cuda/handles.h"

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "backend/cuda/stream.h"

namespace anvil::cuda {
namespace {

std::atomic<bool> g_allow_tf32{false};

constexpr int kMaxDevices = 64;

// What one device owns; the destructor releases it (errors ignored: nothing to report to).
struct DeviceState {
  int device = 0;
  cublasLtHandle_t lt = nullptr;
  cudnnHandle_t dnn = nullptr;

  DeviceState() = default;
  DeviceState(const DeviceState&) = delete;
  DeviceState& operator=(const DeviceState&) = delete;
  ~DeviceState() {
    int prev = 0;
    if (cudaGetDevice(&prev) != cudaSuccess) return;
    cudaSetDevice(device);
    if (dnn) cudnnDestroy(dnn);
    if (lt) cublasLtDestroy(lt);
    cudaSetDevice(prev);
  }
};

struct Pool {
  std::mutex mutex;
  std::array<std::unique_ptr<DeviceState>, kMaxDevices> states;
};

// Never destroyed: tearing the handles down at exit would race the CUDA runtime's own teardown
// (the driver may already be gone when static destructors run). The process exit frees them.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

DeviceState& state(int device) {
  ANVIL_CHECK(device >= 0 && device < kMaxDevices, DeviceError, "cuda:", device,
              " is out of range for the CUDA library handles");
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  auto& s = p.states[size_t(device)];
  if (!s) {
    s = std::make_unique<DeviceState>();
    s->device = device;
  }
  return *s;
}

}  // namespace

void set_allow_tf32(bool on) { g_allow_tf32.store(on); }
bool allow_tf32() { return g_allow_tf32.load(); }

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw DeviceError(std::string(what) + ": " + cublasLtGetStatusName(status) + " (" +
                      cublasLtGetStatusString(status) + ")");
}

void check_cudnn(cudnnStatus_t status, const char* what) {
  if (status != CUDNN_STATUS_SUCCESS)
    throw DeviceError(std::string(what) + ": " + cudnnGetErrorString(status) + " (status " +
                      std::to_string(int(status)) + ")");
}

cublasLtHandle_t cublaslt_handle(int device) {
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(pool().mutex);
  if (!s.lt) ANVIL_CUBLAS_CHECK(cublasLtCreate(&s.lt));
  return s.lt;
}

cudnnHandle_t cudnn_handle(int device) {
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(pool().mutex);
  if (!s.dnn) ANVIL_CUDNN_CHECK(cudnnCreate(&s.dnn));
  ANVIL_CUDNN_CHECK(cudnnSetStream(s.dnn, current_stream()));
  return s.dnn;
}

Tensor library_workspace(int device, size_t bytes) {
  if (bytes == 0) return Tensor();
  const Device dev(DeviceKind::CUDA, device);
  return Tensor::empty({int64_t(bytes)}, TensorOptions(kUInt8).device(dev));
}

}  // namespace anvil::cuda
