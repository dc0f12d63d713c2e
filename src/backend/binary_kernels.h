// Element-wise binary ops. The op layer broadcasts a and b to out's shape (stride-0 views)
// and converts them to the compute dtype: out's dtype for arithmetic, and a common dtype
// (with a bool out) for comparisons.
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

enum class BinaryOp {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum,
  Eq, Ne, Lt, Le, Gt, Ge,
  LogicalAnd, LogicalOr,
};

inline bool is_comparison(BinaryOp op) { return op >= BinaryOp::Eq; }

using BinaryFn = void(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);

inline constinit KernelTable<BinaryFn> binary_kernels{"binary"};

}  // namespace anvil::backend
