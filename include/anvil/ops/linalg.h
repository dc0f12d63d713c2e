// Matrix products (OpenBLAS on the CPU; bfloat16/float16 compute through float32).
#pragma once
#include "anvil/core/tensor.h"

namespace anvil {

// torch.matmul semantics: 1-D x 1-D dot product, 2-D x 2-D matrix product, 1-D operands
// promoted to matrices and squeezed back, and batched products with broadcast batch dims.
Tensor matmul(const Tensor& a, const Tensor& b);
// [n, k] x [k, m] -> [n, m].
Tensor mm(const Tensor& a, const Tensor& b);
// [b, n, k] x [b, k, m] -> [b, n, m].
Tensor bmm(const Tensor& a, const Tensor& b);
// x @ w^T + b with x [..., in], w [out, in], b [out] (optional): torch.nn.functional.linear.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

}  // namespace anvil
