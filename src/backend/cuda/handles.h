// Per-device library state for the CUDA backend: one cuBLASLt handle with its workspace and one
// cuDNN handle with a grow-on-demand workspace per device, created lazily on first use. All work
// runs on the default stream for now. Library errors become DeviceError naming the call.
#pragma once
#include <cublasLt.h>
#include <cudnn.h>

#include <cstddef>

#include "backend/cuda/runtime.h"
#include "backend/cuda/tf32.h"

namespace anvil::cuda {

constexpr size_t kCublasLtWorkspaceBytes = size_t(32) << 20;

void check_cublas(cublasStatus_t status, const char* what);
void check_cudnn(cudnnStatus_t status, const char* what);

// The handles of the current device (the caller holds a DeviceGuard for `device`).
cublasLtHandle_t cublaslt_handle(int device);
void* cublaslt_workspace(int device);  // kCublasLtWorkspaceBytes
cudnnHandle_t cudnn_handle(int device);
// A device buffer of at least `bytes` (nullptr for 0), valid until the next call for `device`.
// Growing frees the old buffer (cudaFree synchronises the device, so no pending work uses it).
void* cudnn_workspace(int device, size_t bytes);

}  // namespace anvil::cuda

#define ANVIL_CUBLAS_CHECK(expr) ::anvil::cuda::check_cublas((expr), #expr)
#define ANVIL_CUDNN_CHECK(expr) ::anvil::cuda::check_cudnn((expr), #expr)
