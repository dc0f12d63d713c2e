// 2-D pooling layers over NCHW (or CHW) input, as torch.nn's.
#pragma once
#include <optional>

#include "anvil/nn/module.h"
#include "anvil/nn/size2.h"

namespace anvil::nn {

// Maximum over each window. stride defaults to kernel_size; padding counts as -inf.
class MaxPool2d : public Module {
 public:
  MaxPool2d(Size2 kernel_size, std::optional<Size2> stride = {}, Size2 padding = 0,
            Size2 dilation = 1, bool ceil_mode = false);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Pair kernel_size, stride, padding, dilation;
  bool ceil_mode;
};

// Mean over each window. stride defaults to kernel_size; padded zeros count towards the
// divisor only with count_include_pad.
class AvgPool2d : public Module {
 public:
  AvgPool2d(Size2 kernel_size, std::optional<Size2> stride = {}, Size2 padding = 0,
            bool ceil_mode = false, bool count_include_pad = true);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Pair kernel_size, stride, padding;
  bool ceil_mode, count_include_pad;
};

// Mean over adaptive bins giving an [N, C, oh, ow] output whatever the input size.
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Pair output_size;
};

// Mean over all positions: [N, C, H, W] -> [N, C] (and [C, H, W] -> [C]); Keras's
// GlobalAveragePooling2D, torch's AdaptiveAvgPool2d(1) followed by Flatten.
class GlobalAvgPool2d : public Module {
 public:
  // Throws ShapeError unless x has 3 or 4 dims.
  Tensor forward(const Tensor& x) override;
};

}  // namespace anvil::nn
