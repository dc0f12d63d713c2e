// Element-wise ops of three operands. The op layer broadcasts every operand to out's shape
// (stride-0 views) and converts them:
//   Where: a is the bool condition, b and c have out's dtype: out = a ? b : c.
//   Clamp: a, b (lower bound) and c (upper bound) have out's dtype: out = min(max(a, b), c),
//          NaN in a propagating.
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

enum class TernaryOp { Where, Clamp };

using TernaryFn = void(TernaryOp op, const Tensor& out, const Tensor& a, const Tensor& b,
                       const Tensor& c);

inline constinit KernelTable<TernaryFn> ternary_kernels{"ternary"};

}  // namespace anvil::backend
