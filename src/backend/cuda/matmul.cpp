// CUDA matrix products through cuBLASLt. Row-major products are column-major products of the
// transposes: out^T [n, m] = op(b)^T op(a)^T, so b's buffer is cuBLASLt's A and a's its B, with
// the same transpose flags. Batches are strided batches. float32 computes in exact float32
// (CUBLAS_COMPUTE_32F) unless set_allow_tf32(true); float64 in float64; float16/bfloat16 in
// float32. The algorithm comes from cublasLtMatmulAlgoGetHeuristic (a host-side query) and is
// cached per shape, dtype, transposes and operand alignment, with the workspace it needs; the
// workspace comes from the caching allocator for each call. Everything runs on
// current_stream() without waiting for it, so products can be captured into CUDA graphs.
// Integers use a plain kernel (nn_helpers.cu).
#include <map>
#include <mutex>
#include <tuple>

#include "backend/cuda/handles.h"
#include "backend/cuda/nn_helpers.h"
#include "backend/cuda/stream.h"
#include "backend/matmul_kernels.h"

namespace anvil::cuda {
namespace {

// RAII for the cuBLASLt descriptors.
struct MatmulDesc {
  cublasLtMatmulDesc_t d = nullptr;
  MatmulDesc(cublasComputeType_t compute, cudaDataType_t scale) {
    ANVIL_CUBLAS_CHECK(cublasLtMatmulDescCreate(&d, compute, scale));
  }
  ~MatmulDesc() { cublasLtMatmulDescDestroy(d); }
  MatmulDesc(const MatmulDesc&) = delete;
  MatmulDesc& operator=(const MatmulDesc&) = delete;
};

struct Layout {
  cublasLtMatrixLayout_t l = nullptr;
  Layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int64_t batch) {
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
uint32_t alignment(const void* p, int64_t batch_stride_bytes, int64_t batch) {
  uint64_t bits = uint64_t(reinterpret_cast<uintptr_t>(p)) | 256;
  if (batch > 1) bits |= uint64_t(batch_stride_bytes);
  return uint32_t(bits & (~bits + 1));
}

using AlgoKey = std::tuple<int, int, bool, bool, int64_t, int64_t, int64_t, int64_t, bool,
                           uint32_t, uint32_t, uint32_t>;
struct Algo {
  cublasLtMatmulAlgo_t algo;
  size_t workspace_bytes;
};
std::mutex g_algo_mutex;
std::map<AlgoKey, Algo>& algo_cache() {
  static auto* cache = new std::map<AlgoKey, Algo>;  // outlives static teardown
  return *cache;
}

struct Types {
  cudaDataType_t data, scale;
  cublasComputeType_t compute;
};

Types types_of(DType dt) {
  switch (dt) {
    case kFloat32:
      return {CUDA_R_32F, CUDA_R_32F,
              allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F};
    case kFloat64: return {CUDA_R_64F, CUDA_R_64F, CUBLAS_COMPUTE_64F};
    case kFloat16: return {CUDA_R_16F, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    case kBFloat16: return {CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    default:
      throw DTypeError(std::string("matmul: dtype ") + dtype_name(dt) + " is not supported");
  }
}

void matmul_cuda(const Tensor& out, const Tensor& a, const Tensor& b, bool trans_a,
                 bool trans_b) {
  const int64_t r = a.dim();
  const int64_t batch = r == 3 ? a.size(0) : 1;
  const int64_t m = trans_a ? a.size(r - 1) : a.size(r - 2);
  const int64_t k = trans_a ? a.size(r - 2) : a.size(r - 1);
  const int64_t n = trans_b ? b.size(r - 2) : b.size(r - 1);
  if (out.numel() == 0) return;
  const int device = out.device().index;
  DeviceGuard guard(device);
  if (k == 0) {
    ANVIL_CUDA_CHECK(cudaMemsetAsync(out.data_ptr(), 0, size_t(out.numel()) * out.element_size(),
                                     current_stream()));
    return;
  }
  const DType dt = a.dtype();
  if (dt == kInt32 || dt == kInt64 || dt == kUInt8) {
    integer_matmul(out, a, b, trans_a, trans_b, batch, m, n, k);
    return;
  }
  ANVIL_CHECK(batch <= INT32_MAX, ShapeError, "matmul: CUDA supports at most ", INT32_MAX,
              " batch entries, got ", batch);
  const Types t = types_of(dt);
  const int64_t es = int64_t(out.element_size());

  MatmulDesc desc(t.compute, t.scale);
  const cublasOperation_t op_x = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_y = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  ANVIL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.d, CUBLASLT_MATMUL_DESC_TRANSA, &op_x,
                                                    sizeof(op_x)));
  ANVIL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.d, CUBLASLT_MATMUL_DESC_TRANSB, &op_y,
                                                    sizeof(op_y)));
  // X = b's buffer seen column-major: [n, k] (ld n) or, transposed, [k, n] (ld k).
  Layout lx(t.data, trans_b ? k : n, trans_b ? n : k, trans_b ? k : n, batch);
  // Y = a's buffer seen column-major: [k, m] (ld k) or, transposed, [m, k] (ld m).
  Layout ly(t.data, trans_a ? m : k, trans_a ? k : m, trans_a ? m : k, batch);
  Layout lo(t.data, n, m, n, batch);  // out^T [n, m]

  const uint32_t al_x = alignment(b.data_ptr(), n * k * es, batch);
  const uint32_t al_y = alignment(a.data_ptr(), m * k * es, batch);
  const uint32_t al_o = alignment(out.data_ptr(), m * n * es, batch);
  const AlgoKey key{device, int(dt), trans_a, trans_b, batch, m, n, k,
                    t.compute == CUBLAS_COMPUTE_32F_FAST_TF32, al_x, al_y, al_o};
  cublasLtHandle_t handle = cublaslt_handle(device);
  Algo algo{};
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(g_algo_mutex);
    auto it = algo_cache().find(key);
    if (it != algo_cache().end()) {
      algo = it->second;
      cached = true;
    }
  }
  if (!cached) {
    Preference pref;
    pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t(kCublasLtWorkspaceBytes));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, al_x);
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, al_y);
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, al_o);
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, al_o);
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    ANVIL_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle, desc.d, lx.l, ly.l, lo.l, lo.l,
                                                      pref.p, 1, &result, &found));
    ANVIL_CHECK(found > 0, DeviceError, "matmul: cuBLASLt has no algorithm for ", dtype_name(dt),
                " [", m, ", ", k, "] x [", k, "] x ", n, " (batch ", batch, ")");
    algo = Algo{result.algo, result.workspaceSize};
    std::lock_guard<std::mutex> lock(g_algo_mutex);
    algo_cache().emplace(key, algo);
  }
  const float alpha_f = 1, beta_f = 0;
  const double alpha_d = 1, beta_d = 0;
  const bool dbl = t.scale == CUDA_R_64F;
  const Tensor ws = library_workspace(device, algo.workspace_bytes);
  ANVIL_CUBLAS_CHECK(cublasLtMatmul(
      handle, desc.d, dbl ? static_cast<const void*>(&alpha_d) : &alpha_f, b.data_ptr(), lx.l,
      a.data_ptr(), ly.l, dbl ? static_cast<const void*>(&beta_d) : &beta_f, out.data_ptr(), lo.l,
      out.data_ptr(), lo.l, &algo.algo, workspace_ptr(ws), algo.workspace_bytes,
      current_stream()));
}

ANVIL_REGISTER_KERNEL(backend::matmul_kernels, CUDA, &matmul_cuda);

}  // namespace
}  // namespace anvil::cuda
