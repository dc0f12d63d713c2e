// 2-D convolution (NCHW, weight [out, in/groups, kh, kw]) as torch.nn.functional.conv2d.
#pragma once
#include <array>

#include "anvil/core/tensor.h"

namespace anvil {

using Pair = std::array<int64_t, 2>;  // (height, width)

// input [N, C, H, W] (or unbatched [C, H, W]), bias [out] or undefined. Output
// [N, out, (H + 2p - d(k-1) - 1)/s + 1, ...]. Throws ShapeError for channel/group mismatches
// or an output smaller than one pixel.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
              Pair stride = {1, 1}, Pair padding = {0, 0}, Pair dilation = {1, 1},
              int64_t groups = 1);

}  // namespace anvil
