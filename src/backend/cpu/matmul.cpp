// CPU matrix products: OpenBLAS gemm per batch entry for the floating dtypes (16-bit floats
// through float32), a plain triple loop for integers.
#include <algorithm>
#include <cstring>

#include "backend/cpu/blas.h"
#include "backend/cpu/loops.h"
#include "backend/matmul_kernels.h"

namespace anvil::cpu {
namespace {

struct Dims3 {
  int64_t batch, m, n, k;
};

Dims3 dims_of(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  const int64_t r = a.dim();
  Dims3 d;
  d.batch = r == 3 ? a.size(0) : 1;
  d.m = trans_a ? a.size(r - 1) : a.size(r - 2);
  d.k = trans_a ? a.size(r - 2) : a.size(r - 1);
  d.n = trans_b ? b.size(r - 2) : b.size(r - 1);
  return d;
}

template <class T>
void gemm_batches(const Dims3& d, const Tensor& out, const Tensor& a, const Tensor& b, bool trans_a,
                  bool trans_b) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* pc = out.data<T>();
  const int64_t lda = trans_a ? d.m : d.k, ldb = trans_b ? d.k : d.n;
  for (int64_t i = 0; i < d.batch; ++i)
    gemm(trans_a, trans_b, d.m, d.n, d.k, compute_t<T>(1), pa + i * d.m * d.k, lda,
         pb + i * d.k * d.n, ldb, compute_t<T>(0), pc + i * d.m * d.n, d.n);
}

// Integers wrap on overflow as they do in PyTorch.
template <class T>
void loop_batches(const Dims3& d, const Tensor& out, const Tensor& a, const Tensor& b, bool trans_a,
                  bool trans_b) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* pc = out.data<T>();
  parallel_for(d.batch * d.m, d.n * d.k, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t bi = row / d.m, i = row % d.m;
      const T* A = pa + bi * d.m * d.k;
      const T* B = pb + bi * d.k * d.n;
      for (int64_t j = 0; j < d.n; ++j) {
        T s = 0;
        for (int64_t p = 0; p < d.k; ++p)
          s = T(s + (trans_a ? A[p * d.m + i] : A[i * d.k + p]) *
                        (trans_b ? B[j * d.k + p] : B[p * d.n + j]));
        pc[row * d.n + j] = s;
      }
    }
  });
}

void matmul_cpu(const Tensor& out, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  const Dims3 d = dims_of(a, b, trans_a, trans_b);
  if (out.numel() == 0) return;
  if (d.k == 0) {  // an empty sum; BLAS would also reject the zero leading dims
    std::memset(out.data_ptr(), 0, size_t(out.numel()) * out.element_size());
    return;
  }
  switch (a.dtype()) {
    case kFloat32:
      gemm_batches<float>(d, out, a, b, trans_a, trans_b);
      break;
    case kFloat64:
      gemm_batches<double>(d, out, a, b, trans_a, trans_b);
      break;
    case kFloat16:
      gemm_batches<float16>(d, out, a, b, trans_a, trans_b);
      break;
    case kBFloat16:
      gemm_batches<bfloat16>(d, out, a, b, trans_a, trans_b);
      break;
    case kInt32:
      loop_batches<int32_t>(d, out, a, b, trans_a, trans_b);
      break;
    case kInt64:
      loop_batches<int64_t>(d, out, a, b, trans_a, trans_b);
      break;
    case kUInt8:
      loop_batches<uint8_t>(d, out, a, b, trans_a, trans_b);
      break;
    default:
      throw DTypeError(std::string("matmul: dtype ") + dtype_name(a.dtype()) + " is not supported");
  }
}

ANVIL_REGISTER_KERNEL(backend::matmul_kernels, CPU, &matmul_cpu);

}  // namespace
}  // namespace anvil::cpu
