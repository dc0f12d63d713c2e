// 2-D convolution kernels. The op layer passes contiguous NCHW tensors of one floating dtype:
// input [N, C, H, W], weight [K, C/groups, kh, kw], output [N, K, OH, OW] — or, where
// `channels_last` is set (CUDA only), the same shapes stored NHWC (input, output and their
// gradients) and KRSC (weight and its gradient): MemoryFormat::ChannelsLast.
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

struct ConvArgs {
  int64_t batch = 0, in_channels = 0, height = 0, width = 0;    // N, C, H, W
  int64_t out_channels = 0, kernel_h = 0, kernel_w = 0;         // K, kh, kw
  int64_t out_h = 0, out_w = 0;                                 // OH, OW
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
  bool channels_last = false;
  bool relu = false;  // forward: out = relu(conv + bias), ReLU as UnaryOp::Relu (NaN stays NaN)
};

// out = conv(input, weight) + bias (bias undefined: none).
using ConvForwardFn = void(const ConvArgs& a, const Tensor& out, const Tensor& input,
                           const Tensor& weight, const Tensor& bias);
// grad_input [N, C, H, W] from grad_out [N, K, OH, OW].
using ConvBackwardInputFn = void(const ConvArgs& a, const Tensor& grad_input,
                                 const Tensor& grad_out, const Tensor& weight);
// grad_weight [K, C/groups, kh, kw] and, when defined, grad_bias [K].
using ConvBackwardWeightFn = void(const ConvArgs& a, const Tensor& grad_weight,
                                  const Tensor& grad_bias, const Tensor& grad_out,
                                  const Tensor& input);

inline constinit KernelTable<ConvForwardFn> conv2d_kernels{"conv2d"};
inline constinit KernelTable<ConvBackwardInputFn> conv2d_backward_input_kernels{
    "conv2d_backward_input"};
inline constinit KernelTable<ConvBackwardWeightFn> conv2d_backward_weight_kernels{
    "conv2d_backward_weight"};

}  // namespace anvil::backend
