// Gradient clipping, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_. Both change the
// gradients of `params` in place; parameters without a gradient are ignored.
#pragma once
#include <vector>

#include "anvil/core/tensor.h"

namespace anvil::optim {

// Scales all gradients by min(1, max_norm / (total_norm + 1e-6)), where total_norm is the
// norm_type-norm of all gradients taken together (norm_type > 0, or INFINITY for the largest
// absolute value). Returns total_norm (before clipping) as a 0-dim tensor on the gradients'
// device, in their (promoted) dtype; a CPU float32 0 when no parameter has a gradient.
// The norm (accumulated in double, in a fixed order) and the coefficient are computed on the
// device by multi-tensor kernels, so it does not synchronise with the host and can be captured
// in a CUDA graph, except with error_if_nonfinite: that reads the norm on the host (one
// synchronisation) and throws ValueError when it is nan or inf. Gradients must share a device
// (DeviceError otherwise). Throws ValueError for norm_type <= 0.
Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

// Clamps every gradient element to [-clip_value, clip_value]. Throws ValueError when
// clip_value < 0.
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace anvil::optim
