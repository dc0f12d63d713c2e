// 2-D pooling over NCHW (or unbatched CHW) inputs, as torch.nn.functional defines it.
#pragma once
#include "anvil/ops/conv.h"

namespace anvil {

// stride defaults to kernel_size when {0, 0}. Padding is -inf for max, and for avg counts
// towards the divisor only with count_include_pad. ceil_mode rounds the output size up.
Tensor max_pool2d(const Tensor& input, Pair kernel_size, Pair stride = {0, 0},
                  Pair padding = {0, 0}, Pair dilation = {1, 1}, bool ceil_mode = false);
Tensor avg_pool2d(const Tensor& input, Pair kernel_size, Pair stride = {0, 0},
                  Pair padding = {0, 0}, bool ceil_mode = false, bool count_include_pad = true);
// Output [N, C, oh, ow]; bins as PyTorch computes them (start = floor(i*H/oh),
// end = ceil((i+1)*H/oh)).
Tensor adaptive_avg_pool2d(const Tensor& input, Pair output_size);

}  // namespace anvil
