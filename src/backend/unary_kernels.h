// Element-wise unary ops. `in` has out's shape (any strides) and, for math ops, out's dtype;
// `alpha` is the op's parameter (leaky_relu slope, elu alpha), unused elsewhere.
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

enum class UnaryOp {
  Neg, Exp, Log, Sqrt, Rsqrt, Abs, Sign, Square, Sin, Cos,
  Relu, LeakyRelu, Elu, Sigmoid, Tanh, Silu, GeluErf, GeluTanh,
  LogicalNot, IsNan,  // bool out
};

using UnaryFn = void(UnaryOp op, const Tensor& out, const Tensor& in, double alpha);

inline constinit KernelTable<UnaryFn> unary_kernels{"unary"};

}  // namespace anvil::backend
