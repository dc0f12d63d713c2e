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
#include <optional>
#include <tuple>

#include "backend/cuda/handles.h"
#include "backend/cuda/lt_plan.h"
#include "backend/cuda/nn_helpers.h"
#include "backend/cuda/stream.h"
#include "backend/matmul_kernels.h"

namespace anvil::cuda {
namespace {

using lt::Algo;
using lt::Layout;
using lt::MatmulDesc;

using AlgoKey = std::tuple<int, int, bool, bool, int64_t, int64_t, int64_t, int64_t, bool,
                           uint32_t, uint32_t, uint32_t>;
std::mutex g_algo_mutex;
std::map<AlgoKey, Algo>& algo_cache() {
  static auto* cache = new std::map<AlgoKey, Algo>;  // outlives static teardown
  return *cache;
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
  const lt::Types t = lt::types_of(dt, "matmul");
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

  const uint32_t al_x = lt::alignment(b.data_ptr(), n * k * es, batch);
  const uint32_t al_y = lt::alignment(a.data_ptr(), m * k * es, batch);
  const uint32_t al_o = lt::alignment(out.data_ptr(), m * n * es, batch);
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
    std::optional<Algo> found;
    ANVIL_CUBLAS_CHECK(lt::heuristic(handle, desc, lx, ly, lo, {al_x, al_y, al_o}, found));
    ANVIL_CHECK(found.has_value(), DeviceError, "matmul: cuBLASLt has no algorithm for ",
                dtype_name(dt), " [", m, ", ", k, "] x [", k, "] x ", n, " (batch ", batch, ")");
    algo = *found;
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
