// The per-device error records of error_flag.h, and the errors they turn back into.
#include "backend/cuda/error_flag.h"

#include <array>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/cuda/stream.h"

namespace anvil::cuda {
namespace {

constexpr int kMaxDevices = 64;

struct DeviceErrors {
  ErrorRecord* host = nullptr;    // mapped page-locked memory
  ErrorRecord* device = nullptr;  // the same memory, seen from the device
  unsigned int* claim = nullptr;  // device memory
};

struct Registry {
  std::mutex mutex;
  std::array<std::unique_ptr<DeviceErrors>, kMaxDevices> devices;
  std::vector<std::string> ops;  // op_id -> name
};

// Never destroyed (as the library handles): the runtime may be gone when statics die.
Registry& registry() {
  static auto* r = new Registry;
  return *r;
}

// Allocates cuda:`device`'s record and claim word; nothing is kept when a step fails (as it
// does inside a graph capture, where these calls are not allowed).
DeviceErrors* create(int device) {
  DeviceGuard guard(device);
  void* host = nullptr;
  void* dev = nullptr;
  unsigned int* claim = nullptr;
  cudaError_t err =
      cudaHostAlloc(&host, sizeof(ErrorRecord), cudaHostAllocMapped | cudaHostAllocPortable);
  if (err == cudaSuccess) err = cudaHostGetDevicePointer(&dev, host, 0);
  if (err == cudaSuccess) err = cudaMalloc(&claim, sizeof(unsigned int));
  if (err == cudaSuccess) err = cudaMemset(claim, 0, sizeof(unsigned int));  // one-time
  if (err != cudaSuccess) {
    if (claim) cudaFree(claim);
    if (host) cudaFreeHost(host);
    check(err, "creating the CUDA error record");
  }
  std::memset(host, 0, sizeof(ErrorRecord));
  auto* e = new DeviceErrors;
  e->host = static_cast<ErrorRecord*>(host);
  e->device = static_cast<ErrorRecord*>(dev);
  e->claim = claim;
  return e;
}

int op_id_locked(Registry& r, const char* op) {
  for (size_t i = 0; i < r.ops.size(); ++i)
    if (r.ops[i] == op) return int(i);
  r.ops.emplace_back(op);
  return int(r.ops.size() - 1);
}

}  // namespace

ErrorSite error_site(int device, const char* op) {
  ANVIL_CHECK(device >= 0 && device < kMaxDevices, DeviceError, "cuda:", device,
              " is out of range for the CUDA error records");
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto& e = r.devices[size_t(device)];
  if (!e) e.reset(create(device));
  return ErrorSite{e->device, e->claim, op_id_locked(r, op)};
}

void raise_device_error(int device) {
  if (device < 0 || device >= kMaxDevices) return;
  Registry& r = registry();
  ErrorRecord rec{};
  std::string op;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    DeviceErrors* e = r.devices[size_t(device)].get();
    if (!e) return;  // no kernel of this device could have reported anything
    volatile ErrorRecord* v = e->host;
    rec.code = v->code;
    if (rec.code == int(ErrorCode::None)) return;
    rec.op = v->op;
    rec.position = v->position;
    rec.value = v->value;
    rec.bound = v->bound;
    rec.extra = v->extra;
    op = rec.op >= 0 && size_t(rec.op) < r.ops.size() ? r.ops[size_t(rec.op)] : "cuda";
    // Clear: the claim in stream order (the stream is idle and nothing can claim before the
    // memset runs, since the claim is still held), then the record.
    ANVIL_CUDA_CHECK(cudaMemsetAsync(e->claim, 0, sizeof(unsigned int), current_stream()));
    v->code = int(ErrorCode::None);
  }
  switch (ErrorCode(rec.code)) {
    case ErrorCode::IndexOutOfRange:
      throw IndexError(detail::cat(op, ": index ", rec.value, " is out of range for dimension ",
                                   rec.extra, " of size ", rec.bound, " (expected 0 <= index < ",
                                   rec.bound, ")"));
    case ErrorCode::TargetOutOfRange:
      throw IndexError(detail::cat(op, ": target ", rec.value, " is out of bounds for ",
                                   rec.bound, " classes (expected a value in [0, ", rec.bound,
                                   ") or ignore_index ", rec.extra, ")"));
    case ErrorCode::DivisionByZero:
      throw ValueError(detail::cat(op, ": integer division by zero"));
    default:
      throw DeviceError(detail::cat(op, ": a CUDA kernel reported error code ", rec.code,
                                    " at position ", rec.position));
  }
}

}  // namespace anvil::cuda
