// Conv2d: 2-D convolution over NCHW input, as torch.nn.Conv2d.
#pragma once
#include "anvil/nn/module.h"
#include "anvil/nn/size2.h"

namespace anvil::nn {

class Conv2d : public Module {
 public:
  // weight [out_channels, in_channels / groups, kh, kw] and bias [out_channels], initialised
  // as PyTorch does: kaiming_uniform_(a = sqrt(5)) and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
  // fan_in = in_channels / groups * kh * kw. Zero padding. Throws ValueError when a channel
  // count is not divisible by groups or a size is not positive.
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Size2 stride = 1,
         Size2 padding = 0, Size2 dilation = 1, int64_t groups = 1, bool bias = true);
  // x [N, in_channels, H, W] (or [in_channels, H, W]) -> [N, out_channels, H', W'] with
  // H' = (H + 2 padding - dilation (kh - 1) - 1) / stride + 1. Throws ShapeError.
  Tensor forward(const Tensor& x) override;
  // relu(forward(x)) in one op (conv2d_relu): what Sequential runs for Conv2d then ReLU.
  Tensor forward_relu(const Tensor& x);
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t in_channels, out_channels;
  Pair kernel_size, stride, padding, dilation;
  int64_t groups;
  Tensor weight, bias;  // bias undefined without one

 private:
  void check_input(const Tensor& x) const;
};

}  // namespace anvil::nn
