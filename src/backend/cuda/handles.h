// Per-device library state for the CUDA backend: one cuBLASLt handle and one cuDNN handle per
// device, created lazily on first use (creation may synchronise, so a warm-up step must create
// them before a graph capture), and the scratch memory of library calls. Library errors become
// DeviceError naming the call.
#pragma once
#include <cublasLt.h>
#include <cudnn.h>

#include <cstddef>

#include "anvil/core/tensor.h"
#include "backend/cuda/runtime.h"
#include "backend/cuda/tf32.h"

namespace anvil::cuda {

// The most workspace a cuBLASLt algorithm may ask for.
constexpr size_t kCublasLtWorkspaceBytes = size_t(32) << 20;

void check_cublas(cublasStatus_t status, const char* what);
void check_cudnn(cudnnStatus_t status, const char* what);

// The handles of the current device (the caller holds a DeviceGuard for `device`).
cublasLtHandle_t cublaslt_handle(int device);
// Issues its work on current_stream() (set on every call, so it follows the calling thread).
cudnnHandle_t cudnn_handle(int device);

// Scratch memory of `bytes` for one library call on cuda:`device`, from the caching allocator
// (undefined for 0 bytes). Drop it once the call is enqueued: the allocator hands memory out
// again only in the stream's order, so the call is done with it before anything else can write
// it. No cudaMalloc/cudaFree once the allocator is warm, so calls can be captured into graphs.
Tensor library_workspace(int device, size_t bytes);
inline void* workspace_ptr(const Tensor& ws) { return ws.defined() ? ws.data_ptr() : nullptr; }

}  // namespace anvil::cuda

#define ANVIL_CUBLAS_CHECK(expr) ::anvil::cuda::check_cublas((expr), #expr)
#define ANVIL_CUDNN_CHECK(expr) ::anvil::cuda::check_cudnn((expr), #expr)
