// Memory layouts of element-wise results. A result takes the channels-last layout when an
// operand of the result's shape has it (as PyTorch's suggest_memory_format), and the kernel
// then runs over all operands as flat runs of memory, so relu, add, casts and their gradients
// keep a channels-last network channels-last without transposing anything.
#pragma once
#include <functional>
#include <optional>
#include <vector>

#include "anvil/core/tensor.h"

namespace anvil::ops {

// 1-D views over memory of `ts` (all of one shape, the result first) when each is dense
// channels-last or one broadcast element (all strides 0); nullopt when one is neither.
std::optional<std::vector<Tensor>> flat_channels_last(const std::vector<Tensor>& ts);

// An element-wise result of `shape`: `kernel(out, in)` fills it from `in` (operands already
// converted and broadcast to `shape`). Channels-last when an operand is, with every tensor
// handed to the kernel as a flat run over memory; row-major otherwise, and also where an
// operand's layout matches neither (the kernel then walks the strides).
using ElementwiseKernel = std::function<void(const Tensor& out, const std::vector<Tensor>& in)>;
Tensor elementwise_result(const Shape& shape, TensorOptions options, const std::vector<Tensor>& in,
                          const ElementwiseKernel& kernel);

}  // namespace anvil::ops
