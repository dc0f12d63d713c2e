// MemoryFormat: how a 4-D [N, C, H, W] tensor is laid out in memory, as torch.memory_format.
// Contiguous is row-major NCHW; ChannelsLast keeps the logical NCHW shape but stores NHWC
// (strides [H*W*C, 1, W*C, C]), the layout cuDNN's tensor-core convolutions and batch norm
// run without transposing. Element-wise ops, dtype conversions, conv2d and batch_norm keep a
// channels-last input channels-last, so a network fed channels-last stays that way.
#pragma once

namespace anvil {

enum class MemoryFormat { Contiguous, ChannelsLast };

}  // namespace anvil
