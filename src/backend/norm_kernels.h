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

// Training-mode batch norm fused with the ReLU after it, after adding `residual` where that is
// defined: out = relu(bn(input) + residual); the other outputs as BatchNormFn. `reserve` gets
// what the backward needs besides them (the ReLU's mask). Returns false, having written
// nothing, for a case the backend has no fused kernel for: the op layer composes instead.
using BatchNormReluFn = bool(const BatchNormArgs& a, const Tensor& out, const Tensor& save_mean,
                             const Tensor& save_invstd, const Tensor& batch_var, Tensor& reserve,
                             const Tensor& input, const Tensor& weight, const Tensor& bias,
                             const Tensor& residual);
// Its backward: grad_input, grad_residual (defined exactly when the forward had a residual)
// and the parameter gradients (when defined) from grad_out, with out the forward's result.
// False when not taken (nothing written).
using BatchNormReluBackwardFn = bool(const BatchNormArgs& a, const Tensor& grad_input,
                                     const Tensor& grad_residual, const Tensor& grad_weight,
                                     const Tensor& grad_bias, const Tensor& grad_out,
                                     const Tensor& input, const Tensor& out, const Tensor& weight,
                                     const Tensor& bias, const Tensor& save_mean,
                                     const Tensor& save_invstd, const Tensor& reserve);

inline constinit KernelTable<BatchNormFn> batch_norm_kernels{"batch_norm"};
inline constinit KernelTable<BatchNormReluFn> batch_norm_relu_kernels{"batch_norm_relu"};
inline constinit KernelTable<BatchNormReluBackwardFn> batch_norm_relu_backward_kernels{
    "batch_norm_relu_backward"};
inline constinit KernelTable<BatchNormBackwardFn> batch_norm_backward_kernels{
    "batch_norm_backward"};

}  // namespace anvil::backend
