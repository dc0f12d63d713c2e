// Batch normalisation kernels. The op layer passes a contiguous input viewed as [N, C, S]
// (S = the product of the dims after C), and contiguous [C] vectors in the statistics dtype
// (float32 for 16-bit inputs, the input's dtype otherwise).
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

struct BatchNormArgs {
  int64_t batch = 0, channels = 0, spatial = 0;  // N, C, S
  double eps = 1e-5;
  bool training = true;
};

// Training: mean and biased variance over (N, S) per channel; batch_var gets the unbiased
// variance (for the running statistics; NaN when N * S == 1). Inference: mean/var are the
// running statistics. Writes out, save_mean and save_invstd = 1 / sqrt(var + eps) [C].
// weight/bias may be undefined (scale 1, shift 0); running_* are read only in inference.
using BatchNormFn = void(const BatchNormArgs& a, const Tensor& out, const Tensor& save_mean,
                         const Tensor& save_invstd, const Tensor& batch_var, const Tensor& input,
                         const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                         const Tensor& running_var);
// Gradients for the outputs that are defined. Training uses the full batch-statistics formula
// dx = w * invstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)), M = N * S;
// inference dx = dy * w * invstd. grad_weight = sum(dy * xhat), grad_bias = sum(dy).
using BatchNormBackwardFn = void(const BatchNormArgs& a, const Tensor& grad_input,
                                 const Tensor& grad_weight, const Tensor& grad_bias,
                                 const Tensor& grad_out, const Tensor& input,
                                 const Tensor& weight, const Tensor& save_mean,
                                 const Tensor& save_invstd);

inline constinit KernelTable<BatchNormFn> batch_norm_kernels{"batch_norm"};
inline constinit KernelTable<BatchNormBackwardFn> batch_norm_backward_kernels{
    "batch_norm_backward"};

}  // namespace anvil::backend
