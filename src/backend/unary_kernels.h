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

inline bool is_predicate(UnaryOp op) { return op >= UnaryOp::LogicalNot; }

using UnaryFn = void(UnaryOp op, const Tensor& out, const Tensor& in, double alpha);

inline constinit KernelTable<UnaryFn> unary_kernels{"unary"};

// Gradients of the activations: grad_in = grad_out * f'(x), all of one floating dtype and
// shape (any strides). `saved` is the op's output for Relu, Sigmoid and Tanh (their
// derivatives are cheapest in terms of it) and its input for the others.
using UnaryBackwardFn = void(UnaryOp op, const Tensor& grad_in, const Tensor& grad_out,
                             const Tensor& saved, double alpha);

inline constinit KernelTable<UnaryBackwardFn> unary_backward_kernels{"unary_backward"};

// True where unary_backward_kernels takes the op's output as `saved`.
inline bool backward_saves_output(UnaryOp op) {
  return op == UnaryOp::Relu || op == UnaryOp::Sigmoid || op == UnaryOp::Tanh;
}

}  // namespace anvil::backend
