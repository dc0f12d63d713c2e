// Matrix products. The op layer hands the kernel contiguous operands of rank 2 ([m, k]) or
// rank 3 ([B, m, k], one product per batch entry); a transposed operand arrives as its
// contiguous transpose with trans_* set, so t() and transpose(-1, -2) views need no copy:
//   out[b] = op(a[b]) * op(b[b]),  op(a) = trans_a ? a^T : a,  out contiguous [B, m, n].
// Floating dtypes go through BLAS; integer dtypes may use a plain loop.
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

using MatmulFn = void(const Tensor& out, const Tensor& a, const Tensor& b, bool trans_a,
                      bool trans_b);

inline constinit KernelTable<MatmulFn> matmul_kernels{"matmul"};

}  // namespace anvil::backend
