// CUDA runtime helpers for the CUDA backend: error checks and the current-device guard.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "anvil/core/error.h"

namespace anvil::cuda {

// Turns a CUDA error into a DeviceError naming the call site.
inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw DeviceError(std::string(what) + ": " + cudaGetErrorName(err) + " (" +
                      cudaGetErrorString(err) + ")");
}

// Makes `index` the current device for its lifetime.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index) {
    check(cudaGetDevice(&prev_), "cudaGetDevice");
    if (prev_ != index) check(cudaSetDevice(index), "cudaSetDevice");
  }
  ~DeviceGuard() { cudaSetDevice(prev_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = 0;
};

}  // namespace anvil::cuda

#define ANVIL_CUDA_CHECK(expr) ::anvil::cuda::check((expr), #expr)
