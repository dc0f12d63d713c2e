// What the cuDNN calls that may decline a case (batch norm, pooling) share: which statuses mean
// "not this case" (the caller then runs our kernels), cuDNN's batch limit, the alignment we
// hand it, and a 4-D tensor descriptor that records whether cuDNN took its dims.
#pragma once
#include <cudnn.h>

#include <cstdint>

#include "anvil/core/tensor.h"
#include "backend/cuda/handles.h"

namespace anvil::cuda {

inline bool cudnn_declined(cudnnStatus_t st) {
  return st == CUDNN_STATUS_NOT_SUPPORTED || st == CUDNN_STATUS_BAD_PARAM;
}

// The largest N given to cuDNN's batch-norm and pooling calls: torch keeps cuDNN's batch norm
// within 65535 after larger batches failed there; we keep to it for both.
constexpr int64_t kMaxCudnnBatch = 65535;

// Data that does not start on a 16-byte boundary (a view into a larger tensor) goes to our
// kernels: cuDNN's may read in vectors, and we have no GPU test of every cuDNN version
// reading such views right.
inline bool cudnn_aligned(const Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
}

struct CudnnTensorDescriptor {
  cudnnTensorDescriptor_t d = nullptr;
  // Of setting the dims: cudnn_declined() where this cuDNN lacks the dtype or the dims (any
  // other failure throws).
  cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
  CudnnTensorDescriptor(cudnnTensorFormat_t format, cudnnDataType_t type, int64_t n, int64_t c,
                        int64_t h, int64_t w) {
    ANVIL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
    status = cudnnSetTensor4dDescriptor(d, format, type, int(n), int(c), int(h), int(w));
    if (status != CUDNN_STATUS_SUCCESS && !cudnn_declined(status)) {
      cudnnDestroyTensorDescriptor(d);
      check_cudnn(status, "cudnnSetTensor4dDescriptor");
    }
  }
  ~CudnnTensorDescriptor() { cudnnDestroyTensorDescriptor(d); }
  CudnnTensorDescriptor(const CudnnTensorDescriptor&) = delete;
  CudnnTensorDescriptor& operator=(const CudnnTensorDescriptor&) = delete;
};

}  // namespace anvil::cuda
