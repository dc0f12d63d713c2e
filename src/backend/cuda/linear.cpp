// CUDA dense layers through cuBLASLt epilogues (layouts as in matmul.cpp: row-major products are
// column-major products of the transposes).
//
// Forward, out [M, N] = act(x [M, K] w [N, K]^T + b): cuBLASLt computes out^T [N, M] = op(A) op(B)
// with A = w's buffer ([K, N] column-major, transposed) and B = x's buffer ([K, M], as is). The
// bias is then a vector over the rows of D, as the BIAS epilogues require. Epilogues:
//   none: BIAS; relu: RELU_BIAS (RELU without a bias);
//   gelu(tanh), float16/bfloat16 only: GELU_AUX_BIAS when the pre-activation is kept for the
//     gradient (GELU_BIAS otherwise; no _BIAS without a bias). float32/float64 take BIAS and then
//     the gelu kernel: the epilogue's tanh may be an approximate instruction, which 16-bit
//     rounding hides and float32 would not.
// Weight gradient, gw [N, K] = g [M, N]^T x [M, K]: gw^T [K, N] = op(A) op(B) with A = x's buffer
// ([K, M], as is) and B = g's buffer ([N, M], transposed); BGRADB sums op(B) = g over the
// product's k (= M) into gb [N] in the same kernel.
//
// Whatever cuBLASLt has no algorithm for (a dtype, an epilogue, an alignment, or a 1-sized dim,
// for which cublasLtMatmulAlgoGetHeuristic is known to fail) falls back to the plain product and
// the backend's bias / activation / column-sum kernels. Algorithms, and the fact that there is
// none, are cached per shape, dtype, compute type, epilogue and alignments. Everything runs on
// current_stream() without waiting, so layers can be captured into CUDA graphs.
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>

#include "backend/cuda/handles.h"
#include "backend/cuda/lt_plan.h"
#include "backend/cuda/nn_helpers.h"
#include "backend/cuda/stream.h"
#include "backend/linear_kernels.h"
#include "backend/matmul_kernels.h"
#include "backend/unary_kernels.h"

namespace anvil::cuda {

// How many linear_act products ran with their epilogue fused (fused = true) or fell back, for
// forward products (bias_grad = false) and weight-gradient products with a bias gradient. Not in
// a header: tests and benchmarks declare it themselves (weak) to check that fusion happens.
int64_t linear_epilogue_calls(bool fused, bool bias_grad);

namespace {
using backend::LinearAct;

std::atomic<int64_t> g_calls[2][2];  // [bias_grad][fused]

void count(bool fused, bool bias_grad) { g_calls[bias_grad][fused].fetch_add(1); }

// One D [m, n] (column-major, ld m) = op(A) op(B) with an epilogue. A is [m, k] after op_a, B is
// [k, n] after op_b.
struct LtProduct {
  DType dtype;
  cublasOperation_t op_a, op_b;
  int64_t m, n, k;
  const void* a;
  int64_t lda;
  const void* b;
  int64_t ldb;
  void* d;
  cublasLtEpilogue_t epilogue;
  const void* bias = nullptr;  // bias [m], or bias gradient [n] for BGRADB
  void* aux = nullptr;         // GELU input [m, n], ld aux_ld
  int64_t aux_ld = 0;
};

using Key = std::tuple<int, int, bool, uint32_t, bool, bool, int64_t, int64_t, int64_t, uint32_t,
                       uint32_t, uint32_t, uint32_t, uint32_t, int64_t>;
std::mutex g_mutex;
std::map<Key, std::optional<lt::Algo>>& algo_cache() {
  static auto* cache = new std::map<Key, std::optional<lt::Algo>>;  // outlives static teardown
  return *cache;
}

// Enqueues the product and returns true, or returns false having enqueued nothing when cuBLASLt
// has no algorithm for it.
bool run(int device, const LtProduct& p) {
  const lt::Types t = lt::types_of(p.dtype, "linear_act");
  lt::MatmulDesc desc(t.compute, t.scale);
  desc.set(CUBLASLT_MATMUL_DESC_TRANSA, p.op_a);
  desc.set(CUBLASLT_MATMUL_DESC_TRANSB, p.op_b);
  desc.set(CUBLASLT_MATMUL_DESC_EPILOGUE, uint32_t(p.epilogue));
  // The heuristic reads these pointers for their alignment, so they are set before it runs.
  if (p.bias) desc.set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, p.bias);
  if (p.aux) {
    desc.set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, p.aux);
    desc.set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, p.aux_ld);
  }
  const bool na = p.op_a == CUBLAS_OP_N, nb = p.op_b == CUBLAS_OP_N;
  lt::Layout la(t.data, na ? p.m : p.k, na ? p.k : p.m, p.lda);
  lt::Layout lb(t.data, nb ? p.k : p.n, nb ? p.n : p.k, p.ldb);
  lt::Layout ld(t.data, p.m, p.n, p.m);

  const lt::Alignments al{lt::alignment(p.a), lt::alignment(p.b), lt::alignment(p.d)};
  const uint32_t al_bias = p.bias ? lt::alignment(p.bias) : 0;
  const uint32_t al_aux = p.aux ? lt::alignment(p.aux) : 0;
  const Key key{device, int(p.dtype), t.compute == CUBLAS_COMPUTE_32F_FAST_TF32,
                uint32_t(p.epilogue), na, nb, p.m, p.n, p.k, al.a, al.b, al.d, al_bias, al_aux,
                p.aux_ld};
  cublasLtHandle_t handle = cublaslt_handle(device);
  std::optional<lt::Algo> algo;
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = algo_cache().find(key);
    if (it != algo_cache().end()) {
      algo = it->second;
      cached = true;
    }
  }
  if (!cached) {
    lt::heuristic(handle, desc, la, lb, ld, al, algo);  // a failed query means "none"
    std::lock_guard<std::mutex> lock(g_mutex);
    algo_cache().emplace(key, algo);
  }
  if (!algo) return false;

  const float alpha_f = 1, beta_f = 0;
  const double alpha_d = 1, beta_d = 0;
  const bool dbl = t.scale == CUDA_R_64F;
  const Tensor ws = library_workspace(device, algo->workspace_bytes);
  const cublasStatus_t status = cublasLtMatmul(
      handle, desc.d, dbl ? static_cast<const void*>(&alpha_d) : &alpha_f, p.a, la.l, p.b, lb.l,
      dbl ? static_cast<const void*>(&beta_d) : &beta_f, p.d, ld.l, p.d, ld.l, &algo->algo,
      workspace_ptr(ws), algo->workspace_bytes, current_stream());
  if (status == CUBLAS_STATUS_NOT_SUPPORTED) {  // refused at launch: remember, fall back
    std::lock_guard<std::mutex> lock(g_mutex);
    algo_cache()[key] = std::nullopt;
    return false;
  }
  ANVIL_CUBLAS_CHECK(status);
  return true;
}

// cublasLtMatmulAlgoGetHeuristic rejects epilogues on products with a dimension of 1 (PyTorch
// keeps such products off its cuBLASLt bias path for this reason).
bool fusable(int64_t m, int64_t n, int64_t k) { return m > 1 && n > 1 && k > 1; }

bool is_16bit(DType dt) { return dt == kFloat16 || dt == kBFloat16; }

// The forward product y^T [N, M] = op(w) x^T (see the top of the file) with `epilogue`.
LtProduct forward_product(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b,
                          cublasLtEpilogue_t epilogue) {
  const int64_t m = x.size(0), k = x.size(1), n = w.size(0);
  return {x.dtype(),    CUBLAS_OP_T, CUBLAS_OP_N,  n, m, k, w.data_ptr(), k, x.data_ptr(), k,
          y.data_ptr(), epilogue,    b.defined() ? b.data_ptr() : nullptr};
}

// y [M, N] = x w^T + b through the BIAS epilogue (true), or the plain product and the bias
// kernel (false).
bool linear_bias(int device, const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t m = x.size(0), k = x.size(1), n = w.size(0);
  if (b.defined() && fusable(m, n, k) &&
      run(device, forward_product(y, x, w, b, CUBLASLT_EPILOGUE_BIAS)))
    return true;
  backend::matmul_kernels[y.device()](y, x, w, false, true);
  if (b.defined()) add_channel_bias(y, b, m, n, 1);
  return false;
}

Tensor linear_act_cuda(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& b,
                       LinearAct act, bool keep_pre) {
  const int64_t m = x.size(0), k = x.size(1), n = w.size(0);
  const DType dt = x.dtype();
  const int device = out.device().index;
  DeviceGuard guard(device);
  if (out.numel() == 0) return keep_pre ? Tensor::empty(out.shape(), out.options()) : Tensor();
  if (act == LinearAct::None) {
    const bool fused = linear_bias(device, out, x, w, b);
    if (b.defined()) count(fused, false);
    return keep_pre ? out : Tensor();
  }
  // relu's gradient needs only the output, so it never keeps the pre-activation.
  const bool relu = act == LinearAct::Relu;
  if (fusable(m, n, k) && (relu ? !keep_pre : is_16bit(dt))) {
    const bool bias = b.defined();
    LtProduct p = forward_product(out, x, w, b, CUBLASLT_EPILOGUE_DEFAULT);
    Tensor pre;
    if (relu) {
      p.epilogue = bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    } else if (keep_pre) {
      // The aux matrix is D-shaped with a leading dim that is a multiple of 8 (cuBLASLt's rule):
      // rows of pre padded to ld elements, seen through a [M, N] view.
      const int64_t ld = (n + 7) / 8 * 8;
      pre = Tensor::empty({m, ld}, out.options());
      p.aux = pre.data_ptr();
      p.aux_ld = ld;
      p.epilogue = bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
    } else {
      p.epilogue = bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
    }
    if (run(device, p)) {
      count(true, false);
      return pre.defined() ? pre.slice(1, 0, n) : Tensor();
    }
  }
  // The bias in the product, the activation as its own kernel.
  count(false, false);
  const Tensor y = keep_pre ? Tensor::empty(out.shape(), out.options()) : out;
  linear_bias(device, y, x, w, b);
  backend::unary_kernels[out.device()](relu ? backend::UnaryOp::Relu : backend::UnaryOp::GeluTanh,
                                       out, y, 0);
  return keep_pre ? y : Tensor();
}

void linear_wgrad_cuda(const Tensor& gw, const Tensor& gb, const Tensor& g, const Tensor& x) {
  const int64_t m = g.size(0), n = g.size(1), k = x.size(1);
  const int device = gw.device().index;
  DeviceGuard guard(device);
  if (gb.defined() && gw.numel() > 0 && fusable(k, n, m)) {
    const bool fused =
        run(device, {g.dtype(), CUBLAS_OP_N, CUBLAS_OP_T, k, n, m, x.data_ptr(), k, g.data_ptr(),
                     n, gw.data_ptr(), CUBLASLT_EPILOGUE_BGRADB, gb.data_ptr()});
    count(fused, true);
    if (fused) return;
  }
  // gw = g^T x, with g seen as the contiguous transpose of g^T.
  backend::matmul_kernels[gw.device()](gw, g, x, true, false);
  if (gb.defined()) channel_sums(gb, g, m, n, 1);
}

}  // namespace

int64_t linear_epilogue_calls(bool fused, bool bias_grad) {
  return g_calls[bias_grad][fused].load();
}

ANVIL_REGISTER_KERNEL(backend::linear_act_kernels, CUDA, &linear_act_cuda);
ANVIL_REGISTER_KERNEL(backend::linear_wgrad_kernels, CUDA, &linear_wgrad_cuda);

}  // namespace anvil::cuda
