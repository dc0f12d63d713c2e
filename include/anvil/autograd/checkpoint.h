// Activation checkpointing, as torch.utils.checkpoint.checkpoint: run a function without keeping
// the intermediate tensors its backward would need, and compute them again during the backward.
// Memory for activations then scales with the number of checkpointed segments rather than with
// every op inside them, for one more forward pass of each segment.
//
//   x = autograd::checkpoint([&](const auto& in) { return block.forward(in[0]); },
//                            {x}, block.parameters());
#pragma once
#include <functional>
#include <vector>

#include "anvil/core/tensor.h"

namespace anvil::autograd {

using CheckpointFn = std::function<Tensor(const std::vector<Tensor>& inputs)>;

// fn(inputs), recorded as one node whose backward runs fn again on the same inputs (with grad
// enabled) and differentiates that: the gradients reach `inputs` and `params` (the tensors fn
// reads besides its inputs, such as a module's parameters; they must be listed to get
// gradients). Random draws inside fn (dropout) repeat exactly in the recomputation: the default
// generator of the inputs' device is set back to where the forward started (also inside a CUDA
// graph capture), and so does the autocast state of their device. fn must be deterministic
// otherwise and must not change its inputs. Without grad mode, or when nothing requires grad, this
// is fn(inputs).
Tensor checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs,
                  const std::vector<Tensor>& params = {});

}  // namespace anvil::autograd
