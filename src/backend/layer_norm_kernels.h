// Layer norm and RMS norm kernels. The op layer passes a contiguous input viewed as [M, N]
// (M rows of N = prod(normalized_shape) elements, M * N > 0), contiguous outputs of the same
// dtype, and weight / bias / statistics as contiguous vectors of the statistics dtype S
// (float32 for float32 and 16-bit inputs, float64 for float64): weight and bias [N], the
// saved mean and rstd [M].
//
// Deterministic: the parameter gradients are sums over rows split by the shape alone (into
// partial sums added in a fixed order, no atomics), so a backward gives the same bits run
// after run.
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

struct NormArgs {
  int64_t rows = 0, cols = 0;  // M, N
  double eps = 1e-5;
};

// layer_norm: per row mean, rstd = 1 / sqrt(var + eps) (biased variance) and
// out = (x - mean) * rstd * w + b. weight / bias may be undefined (1 and 0).
using LayerNormFn = void(const NormArgs& a, const Tensor& out, const Tensor& mean,
                         const Tensor& rstd, const Tensor& input, const Tensor& weight,
                         const Tensor& bias);
// The gradients that are defined, from grad_out [M, N] and the saved mean and rstd. With
// xhat = (x - mean) * rstd and g = grad_out * w:
//   grad_input  = rstd * (g - mean(g) - xhat * mean(g * xhat))   (means over the row)
//   grad_weight = sum over rows of grad_out * xhat,  grad_bias = sum over rows of grad_out.
using LayerNormBackwardFn = void(const NormArgs& a, const Tensor& grad_input,
                                 const Tensor& grad_weight, const Tensor& grad_bias,
                                 const Tensor& grad_out, const Tensor& input, const Tensor& weight,
                                 const Tensor& mean, const Tensor& rstd);

// rms_norm: per row rstd = 1 / sqrt(mean(x^2) + eps) and out = x * rstd * w (w optional).
using RmsNormFn = void(const NormArgs& a, const Tensor& out, const Tensor& rstd,
                       const Tensor& input, const Tensor& weight);
// With xhat = x * rstd and g = grad_out * w:
//   grad_input  = rstd * (g - xhat * mean(g * xhat)),  grad_weight = sum over rows of grad_out * xhat.
using RmsNormBackwardFn = void(const NormArgs& a, const Tensor& grad_input,
                               const Tensor& grad_weight, const Tensor& grad_out,
                               const Tensor& input, const Tensor& weight, const Tensor& rstd);

inline constinit KernelTable<LayerNormFn> layer_norm_kernels{"layer_norm"};
inline constinit KernelTable<LayerNormBackwardFn> layer_norm_backward_kernels{
    "layer_norm_backward"};
inline constinit KernelTable<RmsNormFn> rms_norm_kernels{"rms_norm"};
inline constinit KernelTable<RmsNormBackwardFn> rms_norm_backward_kernels{"rms_norm_backward"};

}  // namespace anvil::backend
