// Our CUDA batch-norm kernels (batch_norm.cu): the whole forward and backward, which
// batch_norm_cudnn.cpp runs where cuDNN cannot take a case, and the per-channel statistics that
// cuDNN's inference call does not write. Arguments and results are those of
// backend/norm_kernels.h; the caller holds a DeviceGuard.
#pragma once
#include "backend/norm_kernels.h"

namespace anvil::cuda {

void batch_norm_ours(const backend::BatchNormArgs& a, const Tensor& out, const Tensor& save_mean,
                     const Tensor& save_invstd, const Tensor& batch_var, const Tensor& input,
                     const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                     const Tensor& running_var);
void batch_norm_backward_ours(const backend::BatchNormArgs& a, const Tensor& grad_input,
                              const Tensor& grad_weight, const Tensor& grad_bias,
                              const Tensor& grad_out, const Tensor& input, const Tensor& weight,
                              const Tensor& save_mean, const Tensor& save_invstd);

// Inference statistics: save_mean = running_mean, save_invstd = 1 / sqrt(running_var + eps).
void batch_norm_inference_stats(const backend::BatchNormArgs& a, const Tensor& save_mean,
                                const Tensor& save_invstd, const Tensor& running_mean,
                                const Tensor& running_var);

}  // namespace anvil::cuda
