// Reductions. The op layer moves the reduced dims last and makes the input contiguous, so a
// kernel sees `in` as [M, N] rows and writes one value per row into the contiguous `out` [M].
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

enum class ReduceOp { Sum, Mean, Max, Min, ArgMax, ArgMin, Var };

struct ReduceArgs {
  ReduceOp op = ReduceOp::Sum;
  int64_t rows = 0;        // M
  int64_t cols = 0;        // N, the reduced extent
  int64_t correction = 1;  // Var: divide by N - correction
};

using ReduceFn = void(const ReduceArgs& args, const Tensor& out, const Tensor& in);

inline constinit KernelTable<ReduceFn> reduce_kernels{"reduce"};

}  // namespace anvil::backend
