#include "anvil/nn/conv.h"

#include <cmath>

#include "anvil/nn/init.h"
#include "anvil/ops/creation.h"
#include "nn/repr.h"

namespace anvil::nn {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Size2 stride,
               Size2 padding, Size2 dilation, int64_t groups, bool bias)
    : in_channels(in_channels),
      out_channels(out_channels),
      kernel_size(kernel_size),
      stride(stride),
      padding(padding),
      dilation(dilation),
      groups(groups) {
  ANVIL_CHECK(groups > 0, ValueError, "Conv2d: expected groups > 0, got ", groups);
  ANVIL_CHECK(in_channels > 0 && out_channels > 0, ValueError,
              "Conv2d: expected positive in_channels and out_channels, got ", in_channels, " and ",
              out_channels);
  ANVIL_CHECK(in_channels % groups == 0 && out_channels % groups == 0, ValueError,
              "Conv2d: expected in_channels and out_channels divisible by groups=", groups,
              ", got ", in_channels, " and ", out_channels);
  for (int i = 0; i < 2; ++i) {
    ANVIL_CHECK(this->kernel_size[i] > 0 && this->stride[i] > 0 && this->dilation[i] > 0,
                ValueError, "Conv2d: expected positive kernel_size, stride and dilation, got ",
                detail::repr(this->kernel_size), ", ", detail::repr(this->stride), ", ",
                detail::repr(this->dilation));
    ANVIL_CHECK(this->padding[i] >= 0, ValueError, "Conv2d: expected non-negative padding, got ",
                detail::repr(this->padding));
  }
  weight = register_parameter("weight", empty({out_channels, in_channels / groups,
                                               this->kernel_size[0], this->kernel_size[1]}));
  this->bias = register_parameter("bias", bias ? empty({out_channels}) : Tensor());
  reset_parameters();
}

void Conv2d::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1 / std::sqrt(double(init::calculate_fan_in_and_fan_out(weight).first));
    init::uniform_(bias, -bound, bound);
  }
}

void Conv2d::check_input(const Tensor& x) const {
  ANVIL_CHECK(x.defined() && (x.dim() == 3 || x.dim() == 4) && x.size(-3) == in_channels,
              ShapeError, "Conv2d::forward: expected input [N, ", in_channels, ", H, W] or [",
              in_channels, ", H, W], got ",
              x.defined() ? "shape " + to_string(x.shape()) : "an undefined tensor");
}

Tensor Conv2d::forward(const Tensor& x) {
  check_input(x);
  return conv2d(x, weight, bias, stride, padding, dilation, groups);
}

Tensor Conv2d::forward_relu(const Tensor& x) {
  check_input(x);
  return conv2d_relu(x, weight, bias, stride, padding, dilation, groups);
}

std::string Conv2d::extra_repr() const {
  std::string s =
      detail::cat(in_channels, ", ", out_channels, ", kernel_size=", detail::repr(kernel_size),
                  ", stride=", detail::repr(stride));
  if (padding != Pair{0, 0}) s += ", padding=" + detail::repr(padding);
  if (dilation != Pair{1, 1}) s += ", dilation=" + detail::repr(dilation);
  if (groups != 1) s += detail::cat(", groups=", groups);
  if (!bias.defined()) s += ", bias=false";
  return s;
}

}  // namespace anvil::nn
