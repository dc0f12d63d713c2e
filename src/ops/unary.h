// Shared by the unary math and activation ops: runs a unary kernel with the dtype rules of
// its op, and the activations' backward kernels.
#pragma once
#include "anvil/core/tensor.h"
#include "backend/unary_kernels.h"

namespace anvil::ops {

// Runs `op` on `a` without recording autograd. Floating math (exp, log, sigmoid, ...) of an
// integer or bool tensor computes in float32, as torch does; neg, abs, sign, square and relu
// keep an integer dtype and refuse bool; predicates give bool.
Tensor unary(backend::UnaryOp op, const Tensor& a, const char* name, double alpha = 0);

// grad * f'(.) through unary_backward_kernels; `saved` is as that table describes.
Tensor unary_backward(backend::UnaryOp op, const Tensor& grad, const Tensor& saved,
                      double alpha = 0);

}  // namespace anvil::ops
