// 2-D pooling kernels. The op layer passes contiguous inputs viewed as `planes` images
// [planes, H, W] (planes = N * C) and contiguous outputs [planes, OH, OW].
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

struct PoolArgs {
  int64_t planes = 0, height = 0, width = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;  // max pooling only
  bool count_include_pad = true;           // avg pooling only
};

// out = the window maxima; indices (int64) = their flat positions h * W + w in the plane.
using MaxPoolFn = void(const PoolArgs& a, const Tensor& out, const Tensor& indices,
                       const Tensor& input);
// grad_input (zeroed by the kernel) receives grad_out at the saved indices.
using MaxPoolBackwardFn = void(const PoolArgs& a, const Tensor& grad_input,
                               const Tensor& grad_out, const Tensor& indices);
// Average pooling with torch's divisor rules (kernel, stride, pad, count_include_pad).
using AvgPoolFn = void(const PoolArgs& a, const Tensor& out, const Tensor& input);
using AvgPoolBackwardFn = void(const PoolArgs& a, const Tensor& grad_input,
                               const Tensor& grad_out);
// Adaptive average pooling: bins [floor(i*H/OH), ceil((i+1)*H/OH)); only the sizes are used.
using AdaptiveAvgPoolFn = void(const PoolArgs& a, const Tensor& out, const Tensor& input);
using AdaptiveAvgPoolBackwardFn = void(const PoolArgs& a, const Tensor& grad_input,
                                       const Tensor& grad_out);

inline constinit KernelTable<MaxPoolFn> max_pool2d_kernels{"max_pool2d"};
inline constinit KernelTable<MaxPoolBackwardFn> max_pool2d_backward_kernels{
    "max_pool2d_backward"};
inline constinit KernelTable<AvgPoolFn> avg_pool2d_kernels{"avg_pool2d"};
inline constinit KernelTable<AvgPoolBackwardFn> avg_pool2d_backward_kernels{
    "avg_pool2d_backward"};
inline constinit KernelTable<AdaptiveAvgPoolFn> adaptive_avg_pool2d_kernels{
    "adaptive_avg_pool2d"};
inline constinit KernelTable<AdaptiveAvgPoolBackwardFn> adaptive_avg_pool2d_backward_kernels{
    "adaptive_avg_pool2d_backward"};

}  // namespace anvil::backend
