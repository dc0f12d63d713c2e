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

}  // namespace anvil
