// conv2d: argument checks, dispatch and gradients (input, weight, bias by dedicated kernels).
#include "anvil/ops/conv.h"

#include "amp/autocast_ops.h"
#include "anvil/autograd/node.h"
#include "backend/conv_kernels.h"
#include "ops/checks.h"
#include "ops/unary.h"

namespace anvil {
namespace {

std::string pair_str(Pair p) { return detail::cat("(", p[0], ", ", p[1], ")"); }

backend::ConvArgs make_args(const Tensor& input, const Tensor& weight, const Tensor& bias,
                            Pair stride, Pair padding, Pair dilation, int64_t groups) {
  const char* op = "conv2d";
  ANVIL_CHECK(weight.dim() == 4, ShapeError, op,
              ": expected weight with 4 dims [out_channels, in_channels/groups, kh, kw], got shape ",
              to_string(weight.shape()));
  ANVIL_CHECK(groups >= 1, ValueError, op, ": expected groups >= 1, got ", groups);
  ANVIL_CHECK(stride[0] >= 1 && stride[1] >= 1, ValueError, op,
              ": expected stride >= 1, got ", pair_str(stride));
  ANVIL_CHECK(padding[0] >= 0 && padding[1] >= 0, ValueError, op,
              ": expected padding >= 0, got ", pair_str(padding));
  ANVIL_CHECK(dilation[0] >= 1 && dilation[1] >= 1, ValueError, op,
              ": expected dilation >= 1, got ", pair_str(dilation));
  backend::ConvArgs a;
  a.batch = input.size(0);
  a.in_channels = input.size(1);
  a.height = input.size(2);
  a.width = input.size(3);
  a.out_channels = weight.size(0);
  a.kernel_h = weight.size(2);
  a.kernel_w = weight.size(3);
  ANVIL_CHECK(a.out_channels % groups == 0, ShapeError, op,
              ": expected out_channels divisible by groups=", groups, ", got out_channels ",
              a.out_channels, " (weight shape ", to_string(weight.shape()), ")");
  ANVIL_CHECK(a.in_channels == weight.size(1) * groups, ShapeError, op,
              ": expected input with weight.size(1) * groups = ", weight.size(1), " * ", groups,
              " = ", weight.size(1) * groups, " channels, got ", a.in_channels,
              " channels (input shape ", to_string(input.shape()), ", weight shape ",
              to_string(weight.shape()), ")");
  ANVIL_CHECK(a.kernel_h >= 1 && a.kernel_w >= 1, ShapeError, op,
              ": expected a kernel of at least 1x1, got weight shape ", to_string(weight.shape()));
  if (bias.defined()) {
    ANVIL_CHECK(bias.dim() == 1 && bias.size(0) == a.out_channels, ShapeError, op,
                ": expected bias of shape [", a.out_channels, "] (out_channels), got shape ",
                to_string(bias.shape()));
  }
  a.stride_h = stride[0];
  a.stride_w = stride[1];
  a.pad_h = padding[0];
  a.pad_w = padding[1];
  a.dilation_h = dilation[0];
  a.dilation_w = dilation[1];
  a.groups = groups;
  a.out_h = (a.height + 2 * a.pad_h - a.dilation_h * (a.kernel_h - 1) - 1) / a.stride_h + 1;
  a.out_w = (a.width + 2 * a.pad_w - a.dilation_w * (a.kernel_w - 1) - 1) / a.stride_w + 1;
  int64_t eff_h = a.dilation_h * (a.kernel_h - 1) + 1, eff_w = a.dilation_w * (a.kernel_w - 1) + 1;
  ANVIL_CHECK(a.height + 2 * a.pad_h >= eff_h && a.width + 2 * a.pad_w >= eff_w, ShapeError, op,
              ": expected a padded input of at least the dilated kernel size ", eff_h, "x", eff_w,
              " (an output of at least 1x1 pixel), got padded input ", a.height + 2 * a.pad_h,
              "x", a.width + 2 * a.pad_w, " (input shape ", to_string(input.shape()), ")");
  return a;
}

Tensor convolve(const Tensor& input, const Tensor& weight, const Tensor& bias, Pair stride,
                Pair padding, Pair dilation, int64_t groups, bool relu) {
  if (amp::detail::autocast_active({&input, &weight, &bias}))
    return amp::detail::run_autocast(
        amp::detail::CastPolicy::LowerPrecision, {input, weight, bias}, [&](const auto& t) {
          return convolve(t[0], t[1], t[2], stride, padding, dilation, groups, relu);
        });
  const char* op = "conv2d";
  ops::check_defined(input, op, "input");
  ops::check_defined(weight, op, "weight");
  ops::check_same_device({input, weight, bias}, op);
  ops::check_floating(input, op, "input");
  ANVIL_CHECK(weight.dtype() == input.dtype(), DTypeError, op,
              ": expected weight of the input's dtype ", dtype_name(input.dtype()), ", got ",
              dtype_name(weight.dtype()));
  ANVIL_CHECK(!bias.defined() || bias.dtype() == input.dtype(), DTypeError, op,
              ": expected bias of the input's dtype ", dtype_name(input.dtype()), ", got ",
              bias.defined() ? dtype_name(bias.dtype()) : "");
  ANVIL_CHECK(input.dim() == 3 || input.dim() == 4, ShapeError, op,
              ": expected input with 3 or 4 dims ([C, H, W] or [N, C, H, W]), got shape ",
              to_string(input.shape()));
  if (input.dim() == 3)  // unbatched: a batch of one, differentiably
    return convolve(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups, relu)
        .squeeze(0);

  backend::ConvArgs a = make_args(input, weight, bias, stride, padding, dilation, groups);
  a.relu = relu;
  // Channels-last in, channels-last out, as in PyTorch. cuDNN convolves NHWC directly (its
  // tensor-core kernels are NHWC, so this saves the transposes it would otherwise run); the
  // CPU kernels are row-major only, and cuDNN has no NHWC float64 backward, so there the
  // result is converted instead.
  const bool channels_last = input.suggest_memory_format() == MemoryFormat::ChannelsLast;
  a.channels_last = channels_last && input.device().is_cuda() && input.dtype() != kFloat64;
  const MemoryFormat format = a.channels_last ? MemoryFormat::ChannelsLast
                                              : MemoryFormat::Contiguous;
  Tensor x, w, b;
  {
    NoGradGuard no_grad;
    x = input.contiguous(format);
    w = weight.contiguous(format);
    b = bias.defined() ? bias.contiguous() : Tensor();
  }
  Tensor out =
      Tensor::empty({a.batch, a.out_channels, a.out_h, a.out_w}, input.options(), format);
  backend::conv2d_kernels[input.device()](a, out, x, w, b);
  if (channels_last && !a.channels_last) {
    NoGradGuard no_grad;
    out = out.contiguous(MemoryFormat::ChannelsLast);
  }

  bool gx = input.requires_grad(), gw = weight.requires_grad();
  bool gb = bias.defined() && bias.requires_grad();
  const bool weight_row_major = weight.is_contiguous();
  // The ReLU's gradient comes from its output, as ReluBackward's does (detached: the node
  // must not hold its own output through itself).
  const Tensor y = relu ? out.detach() : Tensor();
  return autograd::record(
      relu ? "Conv2dReluBackward" : "Conv2dBackward", out, {input, weight, bias},
      [a, x, w, y, gx, gw, gb, format, weight_row_major](const Tensor& grad) -> std::vector<Tensor> {
        Tensor g = (y.defined() ? ops::unary_backward(backend::UnaryOp::Relu, grad, y, 0) : grad)
                       .contiguous(format);
        Tensor dx, dw, db;
        if (gx) {
          dx = Tensor::empty(x.shape(), x.options(), format);
          backend::conv2d_backward_input_kernels[g.device()](a, dx, g, w);
        }
        if (gw || gb) {
          Tensor dw_all = Tensor::empty(w.shape(), w.options(), format);
          Tensor db_all = gb ? Tensor::empty({a.out_channels}, w.options()) : Tensor();
          backend::conv2d_backward_weight_kernels[g.device()](a, dw_all, db_all, g, x);
          // The gradient takes the parameter's own (row-major) layout: optimizers walk a
          // parameter and its gradient as one flat run.
          if (gw) dw = weight_row_major ? dw_all.contiguous() : dw_all;
          db = db_all;
        }
        return {dx, dw, db};
      });
}

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, Pair stride,
              Pair padding, Pair dilation, int64_t groups) {
  return convolve(input, weight, bias, stride, padding, dilation, groups, false);
}

Tensor conv2d_relu(const Tensor& input, const Tensor& weight, const Tensor& bias, Pair stride,
                   Pair padding, Pair dilation, int64_t groups) {
  return convolve(input, weight, bias, stride, padding, dilation, groups, true);
}

}  // namespace anvil
