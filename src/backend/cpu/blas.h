// OpenBLAS matrix products for CPU kernels. float32 and float64 call sgemm/dgemm directly;
// float16 and bfloat16 go through float32 copies.
#pragma once
#include <cblas.h>

#include <cstdint>
#include <vector>

#include "anvil/core/half.h"

namespace anvil::cpu {

// C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C, row-major, with leading dims
// lda/ldb/ldc (elements) and op = transpose when trans_* is set.
inline void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                 int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}
inline void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                 const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
                 int64_t ldc) {
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}
// 16-bit floats: widen, multiply in float32, round back.
template <class H>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const H* a,
          int64_t lda, const H* b, int64_t ldb, float beta, H* c, int64_t ldc) {
  int64_t ar = trans_a ? k : m, br = trans_b ? n : k;
  std::vector<float> fa(size_t(ar * lda)), fb(size_t(br * ldb)), fc(size_t(m * ldc));
  for (size_t i = 0; i < fa.size(); ++i) fa[i] = float(a[i]);
  for (size_t i = 0; i < fb.size(); ++i) fb[i] = float(b[i]);
  if (beta != 0)
    for (size_t i = 0; i < fc.size(); ++i) fc[i] = float(c[i]);
  gemm(trans_a, trans_b, m, n, k, alpha, fa.data(), lda, fb.data(), ldb, beta, fc.data(), ldc);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = H(fc[size_t(i * ldc + j)]);
}

}  // namespace anvil::cpu
