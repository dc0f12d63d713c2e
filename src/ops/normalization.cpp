// batch_norm: argument checks, dispatch, running-statistics update and gradients.
#include "anvil/ops/normalization.h"

#include "anvil/autograd/node.h"
#include "anvil/ops/elementwise.h"
#include "backend/norm_kernels.h"
#include "ops/checks.h"
#include "ops/layout.h"

namespace anvil {
namespace {

// weight, bias and the running statistics are [C] vectors of a floating dtype.
void check_channel_vector(const Tensor& t, int64_t channels, const char* arg) {
  if (!t.defined()) return;
  ANVIL_CHECK(t.dim() == 1 && t.size(0) == channels, ShapeError, "batch_norm: expected ", arg,
              " of shape [", channels, "] (the input's channels), got shape ",
              to_string(t.shape()));
  ops::check_floating(t, "batch_norm", arg);
}

// running = (1 - momentum) * running + momentum * batch, in place and unrecorded.
void update_running(const Tensor& running, const Tensor& batch, double momentum) {
  NoGradGuard no_grad;
  Tensor r = running;
  r.copy_(add(mul(r, 1.0 - momentum), mul(batch.to(r.dtype()), momentum)));
}

}  // namespace

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  const char* op = "batch_norm";
  ops::check_defined(input, op, "input");
  ANVIL_CHECK(input.dim() >= 2, ShapeError, op,
              ": expected input with at least 2 dims [N, C, ...], got shape ",
              to_string(input.shape()));
  ops::check_floating(input, op, "input");
  ops::check_same_device({input, running_mean, running_var, weight, bias}, op);
  const int64_t C = input.size(1);
  check_channel_vector(weight, C, "weight");
  check_channel_vector(bias, C, "bias");
  check_channel_vector(running_mean, C, "running_mean");
  check_channel_vector(running_var, C, "running_var");
  ANVIL_CHECK(eps >= 0, ValueError, op, ": expected eps >= 0, got ", eps);
  ANVIL_CHECK(training || (running_mean.defined() && running_var.defined()), ValueError, op,
              ": expected running_mean and running_var in inference mode (training=false), got ",
              running_mean.defined() ? "" : "no running_mean ",
              running_var.defined() ? "" : "no running_var");
  backend::BatchNormArgs a;
  a.batch = input.size(0);
  a.channels = C;
  a.spatial = C == 0 || a.batch == 0 ? 0 : input.numel() / (a.batch * C);
  a.eps = eps;
  a.training = training;
  ANVIL_CHECK(!training || a.batch * a.spatial > 1, ValueError, op,
              ": expected more than 1 value per channel when training, got input shape ",
              to_string(input.shape()));
  // A channels-last [N, C, H, W] input is, in memory, an [N*H*W, C] matrix: normalised as
  // that (spatial 1), it and its gradient stay channels-last.
  const MemoryFormat format = ops::suggest_memory_format({&input}, input.shape());
  if (format == MemoryFormat::ChannelsLast) {
    a.batch *= a.spatial;
    a.spatial = 1;
  }

  const DType stat = input.dtype() == kFloat64 ? kFloat64 : kFloat32;
  auto prepare = [&](const Tensor& t) { return t.defined() ? t.to(stat).contiguous() : Tensor(); };
  Tensor x, w, b, rm, rv;
  {
    NoGradGuard no_grad;
    x = input.contiguous(format);
    w = prepare(weight);
    b = prepare(bias);
    if (!training) {
      rm = prepare(running_mean);
      rv = prepare(running_var);
    }
  }
  TensorOptions sopts = TensorOptions(stat).device(input.device());
  Tensor out = Tensor::empty(input.shape(), input.options(), format);
  Tensor save_mean = Tensor::empty({C}, sopts), save_invstd = Tensor::empty({C}, sopts);
  Tensor batch_var = training && running_var.defined() ? Tensor::empty({C}, sopts) : Tensor();
  backend::batch_norm_kernels[input.device()](a, out, save_mean, save_invstd, batch_var, x, w, b,
                                              rm, rv);
  if (training) {
    if (running_mean.defined()) update_running(running_mean, save_mean, momentum);
    if (running_var.defined()) update_running(running_var, batch_var, momentum);
  }

  bool gx = input.requires_grad();
  bool gw = weight.defined() && weight.requires_grad();
  bool gb = bias.defined() && bias.requires_grad();
  return autograd::record(
      "BatchNormBackward", out, {input, weight, bias},
      [a, x, w, save_mean, save_invstd, gx, gw, gb, stat,
       format](const Tensor& grad) -> std::vector<Tensor> {
        Tensor g = grad.to(x.dtype()).contiguous(format);
        TensorOptions sopts = TensorOptions(stat).device(g.device());
        Tensor dx = gx ? Tensor::empty(x.shape(), x.options(), format) : Tensor();
        Tensor dw = gw ? Tensor::empty({a.channels}, sopts) : Tensor();
        Tensor db = gb ? Tensor::empty({a.channels}, sopts) : Tensor();
        backend::batch_norm_backward_kernels[g.device()](a, dx, dw, db, g, x, w, save_mean,
                                                         save_invstd);
        return {dx, dw, db};
      });
}

}  // namespace anvil
