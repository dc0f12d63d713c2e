// The pieces of a cuBLASLt product shared by matmul.cpp and linear.cpp: RAII descriptors, the
// data/scale/compute types of a dtype, operand alignment, and the heuristic query. Row-major
// products are column-major products of the transposes (see matmul.cpp).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "backend/cuda/handles.h"

namespace anvil::cuda::lt {

struct MatmulDesc {
  cublasLtMatmulDesc_t d = nullptr;
  MatmulDesc(cublasComputeType_t compute, cudaDataType_t scale) {
    ANVIL_CUBLAS_CHECK(cublasLtMatmulDescCreate(&d, compute, scale));
  }
  ~MatmulDesc() { cublasLtMatmulDescDestroy(d); }
  MatmulDesc(const MatmulDesc&) = delete;
  MatmulDesc& operator=(const MatmulDesc&) = delete;
  // `v` must have the attribute's documented type (uint32_t epilogue, void* pointers, ...).
  template <class V>
  void set(cublasLtMatmulDescAttributes_t attr, const V& v) {
    ANVIL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, attr, &v, sizeof(v)));
  }
};

struct Layout {
  cublasLtMatrixLayout_t l = nullptr;
  Layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int64_t batch = 1) {
    ANVIL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, uint64_t(rows), uint64_t(cols), ld));
    if (batch > 1) {
      const int32_t count = int32_t(batch);
      const int64_t stride = rows * cols;
      ANVIL_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
          l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
      ANVIL_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
          l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
    }
  }
  ~Layout() { cublasLtMatrixLayoutDestroy(l); }
  Layout(const Layout&) = delete;
  Layout& operator=(const Layout&) = delete;
};

struct Preference {
  cublasLtMatmulPreference_t p = nullptr;
  Preference() { ANVIL_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&p)); }
  ~Preference() { cublasLtMatmulPreferenceDestroy(p); }
  Preference(const Preference&) = delete;
  Preference& operator=(const Preference&) = delete;
  void set(cublasLtMatmulPreferenceAttributes_t attr, uint32_t v) {
    ANVIL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p, attr, &v, sizeof(v)));
  }
  void set(cublasLtMatmulPreferenceAttributes_t attr, uint64_t v) {
    ANVIL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p, attr, &v, sizeof(v)));
  }
};

// The largest power of two (at most 256) dividing every batch entry's address.
inline uint32_t alignment(const void* p, int64_t batch_stride_bytes = 0, int64_t batch = 1) {
  uint64_t bits = uint64_t(reinterpret_cast<uintptr_t>(p)) | 256;
  if (batch > 1) bits |= uint64_t(batch_stride_bytes);
  return uint32_t(bits & (~bits + 1));
}

struct Types {
  cudaDataType_t data, scale;
  cublasComputeType_t compute;
};

// float32 computes in exact float32 unless allow_tf32(); 16-bit floats compute in float32.
// Throws DTypeError naming `op` for other dtypes.
inline Types types_of(DType dt, const char* op) {
  switch (dt) {
    case kFloat32:
      return {CUDA_R_32F, CUDA_R_32F,
              allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F};
    case kFloat64: return {CUDA_R_64F, CUDA_R_64F, CUBLAS_COMPUTE_64F};
    case kFloat16: return {CUDA_R_16F, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    case kBFloat16: return {CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    default:
      throw DTypeError(std::string(op) + ": dtype " + dtype_name(dt) + " is not supported");
  }
}

// An algorithm with the workspace it needs.
struct Algo {
  cublasLtMatmulAlgo_t algo;
  size_t workspace_bytes;
};

// Minimum alignments (bytes) of the A, B and C/D buffers, for the heuristic's preference.
struct Alignments {
  uint32_t a, b, d;
};

// Asks for the best algorithm for D = op(A) op(B) (C = D) and returns the query's status;
// `algo` is set only when one was found. Callers that can fall back (an epilogue, dtype or shape
// cuBLASLt does not support) treat any failure as "none"; plain products raise it.
inline cublasStatus_t heuristic(cublasLtHandle_t handle, const MatmulDesc& desc,
                                const Layout& la, const Layout& lb, const Layout& ld,
                                Alignments al, std::optional<Algo>& algo) {
  Preference pref;
  pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t(kCublasLtWorkspaceBytes));
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, al.a);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, al.b);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, al.d);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, al.d);
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  algo.reset();
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle, desc.d, la.l, lb.l, ld.l,
                                                               ld.l, pref.p, 1, &result, &found);
  if (status == CUBLAS_STATUS_SUCCESS && found > 0) algo = Algo{result.algo, result.workspaceSize};
  return status;
}

}  // namespace anvil::cuda::lt
