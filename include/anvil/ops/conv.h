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

// relu(conv2d(...)) with the ReLU in the bias pass (one pass less each way on CUDA); the same
// values as the composition. nn::Sequential uses it for Conv2d followed by ReLU.
Tensor conv2d_relu(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
                   Pair stride = {1, 1}, Pair padding = {0, 0}, Pair dilation = {1, 1},
                   int64_t groups = 1);

}  // namespace anvil
