// 2-D pooling: argument checks, output sizes (PyTorch's rules), dispatch and gradients.
#include "anvil/ops/pool.h"

#include "anvil/autograd/node.h"
#include "backend/pool_kernels.h"
#include "ops/checks.h"

namespace anvil {
namespace {

std::string pair_str(Pair p) { return detail::cat("(", p[0], ", ", p[1], ")"); }

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// torch's pooling_output_shape: with ceil_mode the last window must start inside the input
// or its left padding.
int64_t pooled_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dilation,
                    bool ceil_mode) {
  int64_t out =
      floor_div(in + 2 * pad - dilation * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0), stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

// Checks the input and the window, and fills the geometry (planes = all leading dims).
backend::PoolArgs pool_args(const char* op, const Tensor& input, Pair kernel, Pair& stride,
                            Pair padding, Pair dilation, bool ceil_mode) {
  ops::check_defined(input, op, "input");
  ANVIL_CHECK(input.dim() == 3 || input.dim() == 4, ShapeError, op,
              ": expected input with 3 or 4 dims ([C, H, W] or [N, C, H, W]), got shape ",
              to_string(input.shape()));
  for (int64_t d = 1; d < input.dim(); ++d)
    ANVIL_CHECK(input.size(d) > 0, ShapeError, op,
                ": expected input with non-zero channel and spatial sizes, got shape ",
                to_string(input.shape()));
  if (stride[0] == 0 && stride[1] == 0) stride = kernel;
  ANVIL_CHECK(kernel[0] >= 1 && kernel[1] >= 1, ValueError, op,
              ": expected kernel_size >= 1, got ", pair_str(kernel));
  ANVIL_CHECK(stride[0] >= 1 && stride[1] >= 1, ValueError, op, ": expected stride >= 1, got ",
              pair_str(stride));
  ANVIL_CHECK(dilation[0] >= 1 && dilation[1] >= 1, ValueError, op,
              ": expected dilation >= 1, got ", pair_str(dilation));
  ANVIL_CHECK(padding[0] >= 0 && padding[1] >= 0 && padding[0] <= kernel[0] / 2 &&
                  padding[1] <= kernel[1] / 2,
              ValueError, op, ": expected padding between 0 and half the kernel size ",
              pair_str({kernel[0] / 2, kernel[1] / 2}), ", got ", pair_str(padding));
  backend::PoolArgs a;
  a.height = input.size(-2);
  a.width = input.size(-1);
  a.planes = a.height * a.width == 0 ? 0 : input.numel() / (a.height * a.width);
  a.kernel_h = kernel[0];
  a.kernel_w = kernel[1];
  a.stride_h = stride[0];
  a.stride_w = stride[1];
  a.pad_h = padding[0];
  a.pad_w = padding[1];
  a.dilation_h = dilation[0];
  a.dilation_w = dilation[1];
  a.out_h = pooled_size(a.height, a.kernel_h, a.pad_h, a.stride_h, a.dilation_h, ceil_mode);
  a.out_w = pooled_size(a.width, a.kernel_w, a.pad_w, a.stride_w, a.dilation_w, ceil_mode);
  ANVIL_CHECK(a.out_h >= 1 && a.out_w >= 1, ShapeError, op,
              ": expected an output of at least 1x1, got ", a.out_h, "x", a.out_w, " (input shape ",
              to_string(input.shape()), ", kernel ", pair_str(kernel), ", padding ",
              pair_str(padding), ", dilation ", pair_str(dilation), ")");
  return a;
}

Shape pooled_shape(const Tensor& input, int64_t oh, int64_t ow) {
  Shape s = input.shape();
  s[s.size() - 2] = oh;
  s[s.size() - 1] = ow;
  return s;
}

Tensor contiguous_nograd(const Tensor& t) {
  NoGradGuard no_grad;
  return t.contiguous();
}

}  // namespace

Tensor max_pool2d(const Tensor& input, Pair kernel_size, Pair stride, Pair padding, Pair dilation,
                  bool ceil_mode) {
  const char* op = "max_pool2d";
  backend::PoolArgs a = pool_args(op, input, kernel_size, stride, padding, dilation, ceil_mode);
  ANVIL_CHECK(input.dtype() != kBool, DTypeError, op, ": expected a numeric input, got bool");
  Tensor x = contiguous_nograd(input);
  Shape out_shape = pooled_shape(input, a.out_h, a.out_w);
  Tensor out = Tensor::empty(out_shape, input.options());
  Tensor indices = Tensor::empty(out_shape, TensorOptions(kInt64).device(input.device()));
  backend::max_pool2d_kernels[input.device()](a, out, indices, x);
  Shape in_shape = input.shape();
  return autograd::record("MaxPool2dBackward", out, {input},
                          [a, indices, in_shape](const Tensor& grad) -> std::vector<Tensor> {
                            Tensor g = grad.contiguous();
                            Tensor gx = Tensor::empty(in_shape, g.options());
                            backend::max_pool2d_backward_kernels[g.device()](a, gx, g, indices);
                            return {gx};
                          });
}

Tensor avg_pool2d(const Tensor& input, Pair kernel_size, Pair stride, Pair padding,
                  bool ceil_mode, bool count_include_pad) {
  const char* op = "avg_pool2d";
  backend::PoolArgs a = pool_args(op, input, kernel_size, stride, padding, {1, 1}, ceil_mode);
  ops::check_floating(input, op, "input");
  a.count_include_pad = count_include_pad;
  Tensor x = contiguous_nograd(input);
  Tensor out = Tensor::empty(pooled_shape(input, a.out_h, a.out_w), input.options());
  backend::avg_pool2d_kernels[input.device()](a, out, x);
  Shape in_shape = input.shape();
  return autograd::record("AvgPool2dBackward", out, {input},
                          [a, in_shape](const Tensor& grad) -> std::vector<Tensor> {
                            Tensor g = grad.contiguous();
                            Tensor gx = Tensor::empty(in_shape, g.options());
                            backend::avg_pool2d_backward_kernels[g.device()](a, gx, g);
                            return {gx};
                          });
}

Tensor adaptive_avg_pool2d(const Tensor& input, Pair output_size) {
  const char* op = "adaptive_avg_pool2d";
  ops::check_defined(input, op, "input");
  ANVIL_CHECK(input.dim() == 3 || input.dim() == 4, ShapeError, op,
              ": expected input with 3 or 4 dims ([C, H, W] or [N, C, H, W]), got shape ",
              to_string(input.shape()));
  for (int64_t d = 1; d < input.dim(); ++d)
    ANVIL_CHECK(input.size(d) > 0, ShapeError, op,
                ": expected input with non-zero channel and spatial sizes, got shape ",
                to_string(input.shape()));
  ANVIL_CHECK(output_size[0] >= 1 && output_size[1] >= 1, ValueError, op,
              ": expected output_size >= 1, got ", pair_str(output_size));
  ops::check_floating(input, op, "input");
  backend::PoolArgs a;
  a.height = input.size(-2);
  a.width = input.size(-1);
  a.planes = input.numel() / (a.height * a.width);
  a.out_h = output_size[0];
  a.out_w = output_size[1];
  Tensor x = contiguous_nograd(input);
  Tensor out = Tensor::empty(pooled_shape(input, a.out_h, a.out_w), input.options());
  backend::adaptive_avg_pool2d_kernels[input.device()](a, out, x);
  Shape in_shape = input.shape();
  return autograd::record("AdaptiveAvgPool2dBackward", out, {input},
                          [a, in_shape](const Tensor& grad) -> std::vector<Tensor> {
                            Tensor g = grad.contiguous();
                            Tensor gx = Tensor::empty(in_shape, g.options());
                            backend::adaptive_avg_pool2d_backward_kernels[g.device()](a, gx, g);
                            return {gx};
                          });
}

}  // namespace anvil
