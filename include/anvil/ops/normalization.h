// Batch normalisation as torch.nn.functional.batch_norm.
#pragma once
#include "anvil/core/tensor.h"

namespace anvil {

// input [N, C, ...]. In training the batch statistics (biased variance) normalise, and the
// running statistics, when given, are updated in place:
//   running = (1 - momentum) * running + momentum * batch  (unbiased variance for running_var).
// In inference the running statistics normalise. weight/bias [C] are optional (affine).
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                  double eps = 1e-5);

// relu(batch_norm(input, ...) + residual) (residual optional: relu(batch_norm(...))), the
// pattern of ResNet blocks, as one fused kernel where the backend has one (cuDNN's NHWC batch
// norm with its ReLU epilogue, training, 16-bit channels-last input) and composed otherwise.
// The same values either way, up to the roundings fusion skips.
Tensor batch_norm_relu(const Tensor& input, const Tensor& running_mean,
                       const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                       bool training, double momentum = 0.1, double eps = 1e-5,
                       const Tensor& residual = Tensor());

}  // namespace anvil
