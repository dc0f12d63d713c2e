#include "anvil/nn/pooling.h"

#include "anvil/ops/pool.h"
#include "nn/repr.h"

namespace anvil::nn {
namespace {

// Positive kernel sizes and strides, non-negative padding at most half the kernel (PyTorch's
// rule), as ValueError naming the layer.
void check_window(const char* layer, Pair kernel, Pair stride, Pair padding) {
  for (int i = 0; i < 2; ++i) {
    ANVIL_CHECK(kernel[i] > 0 && stride[i] > 0, ValueError, layer,
                ": expected positive kernel_size and stride, got ", detail::repr(kernel), " and ",
                detail::repr(stride));
    ANVIL_CHECK(padding[i] >= 0 && 2 * padding[i] <= kernel[i], ValueError, layer,
                ": expected padding between 0 and half the kernel size ", detail::repr(kernel),
                ", got ", detail::repr(padding));
  }
}

void check_input(const char* layer, const Tensor& x) {
  ANVIL_CHECK(x.defined() && (x.dim() == 3 || x.dim() == 4), ShapeError, layer,
              "::forward: expected input [N, C, H, W] or [C, H, W], got ",
              x.defined() ? "shape " + to_string(x.shape()) : "an undefined tensor");
}

}  // namespace

MaxPool2d::MaxPool2d(Size2 kernel_size, std::optional<Size2> stride, Size2 padding, Size2 dilation,
                     bool ceil_mode)
    : kernel_size(kernel_size),
      stride(stride ? stride->v : kernel_size.v),
      padding(padding),
      dilation(dilation),
      ceil_mode(ceil_mode) {
  check_window("MaxPool2d", this->kernel_size, this->stride, this->padding);
  ANVIL_CHECK(this->dilation[0] > 0 && this->dilation[1] > 0, ValueError,
              "MaxPool2d: expected positive dilation, got ", detail::repr(this->dilation));
}

Tensor MaxPool2d::forward(const Tensor& x) {
  check_input("MaxPool2d", x);
  return max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode);
}

std::string MaxPool2d::extra_repr() const {
  return "kernel_size=" + detail::repr(kernel_size) + ", stride=" + detail::repr(stride) +
         ", padding=" + detail::repr(padding) + ", dilation=" + detail::repr(dilation) +
         ", ceil_mode=" + detail::repr(ceil_mode);
}

AvgPool2d::AvgPool2d(Size2 kernel_size, std::optional<Size2> stride, Size2 padding, bool ceil_mode,
                     bool count_include_pad)
    : kernel_size(kernel_size),
      stride(stride ? stride->v : kernel_size.v),
      padding(padding),
      ceil_mode(ceil_mode),
      count_include_pad(count_include_pad) {
  check_window("AvgPool2d", this->kernel_size, this->stride, this->padding);
}

Tensor AvgPool2d::forward(const Tensor& x) {
  check_input("AvgPool2d", x);
  return avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad);
}

std::string AvgPool2d::extra_repr() const {
  return "kernel_size=" + detail::repr(kernel_size) + ", stride=" + detail::repr(stride) +
         ", padding=" + detail::repr(padding);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 output_size) : output_size(output_size) {
  ANVIL_CHECK(this->output_size[0] > 0 && this->output_size[1] > 0, ValueError,
              "AdaptiveAvgPool2d: expected a positive output_size, got ",
              detail::repr(this->output_size));
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  check_input("AdaptiveAvgPool2d", x);
  return adaptive_avg_pool2d(x, output_size);
}

std::string AdaptiveAvgPool2d::extra_repr() const {
  return "output_size=" + detail::repr(output_size);
}

Tensor GlobalAvgPool2d::forward(const Tensor& x) {
  check_input("GlobalAvgPool2d", x);
  return adaptive_avg_pool2d(x, {1, 1}).flatten(-3);
}

}  // namespace anvil::nn
