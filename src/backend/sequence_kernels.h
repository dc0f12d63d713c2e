// Evenly spaced fills (arange, linspace) written on the tensor's own device, so that creating
// position ids inside a training step needs no copy from the host (which a CUDA graph cannot
// capture). Element i of the contiguous `out` is, computed in double and then converted:
//   from_end == false:  start + i * step                              (arange)
//   from_end == true:   i < n / 2 ? start + i * step : end - (n - 1 - i) * step
//                                                                     (linspace, as PyTorch)
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

struct SequenceArgs {
  double start = 0, step = 1, end = 0;
  bool from_end = false;
};

using SequenceFn = void(const SequenceArgs& args, const Tensor& out);

inline constinit KernelTable<SequenceFn> sequence_kernels{"sequence"};

}  // namespace anvil::backend
