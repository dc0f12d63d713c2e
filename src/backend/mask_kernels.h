// Triangles of matrices (tril, triu): out[b, i, j] = keep(i, j) ? x[b, i, j] : 0 with
//   keep(i, j) = lower ? j - i <= diagonal : j - i >= diagonal.
// x and out are contiguous [batch, rows, cols] of one dtype (any of the eight).
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

struct TriangleArgs {
  int64_t batch = 0, rows = 0, cols = 0;
  int64_t diagonal = 0;
  bool lower = true;
};

using TriangleFn = void(const TriangleArgs& args, const Tensor& out, const Tensor& x);

inline constinit KernelTable<TriangleFn> triangle_kernels{"triangle"};

}  // namespace anvil::backend
