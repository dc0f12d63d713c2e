// Memory layouts of element-wise results. A result takes the channels-last layout when an
// operand of the result's shape has it (as PyTorch's suggest_memory_format), and the kernel
// then runs over all operands as flat runs of memory, so relu, add, casts and their gradients
// keep a channels-last network channels-last without transposing anything.
#pragma once
#include <optional>
#include <vector>

#include "anvil/core/tensor.h"

namespace anvil::ops {

// ChannelsLast when some operand of `shape` is dense channels-last and not also row-major
// contiguous (a [N, 1, H, W] or [N, C, 1, 1] tensor is both: it stays Contiguous).
MemoryFormat suggest_memory_format(const std::vector<const Tensor*>& operands, const Shape& shape);

// 1-D views over memory of `ts` (all of one shape, the result first) when each is dense
// channels-last or one broadcast element (all strides 0); nullopt when one is neither.
std::optional<std::vector<Tensor>> flat_channels_last(const std::vector<Tensor>& ts);

}  // namespace anvil::ops
