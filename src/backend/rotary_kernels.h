// Rotary position embedding, one pass each way. For each row of x (all dims but the last, D
// elements, h = D / 2) and each pair (i, i + h), i < h, with c = cos and s = sin of the row:
//   forward:   out[i] = x[i] c[i] - x[i+h] s[i],      out[i+h] = x[i+h] c[i+h] + x[i] s[i+h]
//   transpose: out[i] = x[i] c[i] + x[i+h] s[i+h],    out[i+h] = x[i+h] c[i+h] - x[i] s[i]
// (the transpose maps an output gradient to the input's), in x's compute type, rounded once.
// x and out are contiguous of one floating dtype and shape [..., D]; cos and sin have x's
// dtype and shape as broadcast views (any strides, stride-0 ones included, on the leading
// dims; stride 1 on the last).
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

using RotaryFn = void(bool transpose, const Tensor& out, const Tensor& x, const Tensor& cos,
                      const Tensor& sin);

inline constinit KernelTable<RotaryFn> rotary_kernels{"rotary"};

}  // namespace anvil::backend
