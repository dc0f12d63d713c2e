// Masking: the lower and upper triangles of matrices (tril, triu) and filling where a boolean
// mask is set (masked_fill), as torch defines them. Attention builds its causal mask with these.
#pragma once
#include "anvil/core/tensor.h"

namespace anvil {

// The lower triangle of the last two dims of x [..., L, S]: element (i, j) is kept where
// j - i <= diagonal and zero elsewhere (diagonal 0: the main diagonal; > 0 above it, < 0
// below). Any dtype, any batch dims; the result is a new contiguous tensor. The gradient is
// tril of the output gradient. Throws ShapeError for fewer than 2 dims.
Tensor tril(const Tensor& x, int64_t diagonal = 0);
// The upper triangle: element (i, j) is kept where j - i >= diagonal. As tril otherwise.
Tensor triu(const Tensor& x, int64_t diagonal = 0);

// x with `value` where mask is true: where(mask, value, x), the value converted to x's dtype
// (a floating value into an integer tensor truncates, as in torch). mask is bool and
// broadcasts with x; the result has the broadcast shape (torch.masked_fill). The gradient
// flows to x where mask is false. Throws DTypeError for a mask that is not bool, ShapeError
// for shapes that do not broadcast, DeviceError for tensors on different devices.
Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value);

}  // namespace anvil
