// A state dict: named tensors, as in PyTorch (`fc1.weight`, `state.0.exp_avg`, ...). Modules,
// optimizers and schedulers save and restore themselves through it; scalars travel as
// 0-dim tensors, so one map serialises everything (checkpoints store it as safetensors).
#pragma once
#include <map>
#include <string>

#include "anvil/core/tensor.h"

namespace anvil {

using StateDict = std::map<std::string, Tensor>;

}  // namespace anvil
