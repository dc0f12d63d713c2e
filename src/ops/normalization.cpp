// batch_norm: argument checks, dispatch, running-statistics update and gradients.
#include "anvil/ops/normalization.h"

#include "anvil/autograd/node.h"
#include "anvil/ops/activation.h"
#include "anvil/ops/elementwise.h"
#include "backend/norm_kernels.h"
#include "ops/checks.h"

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

namespace {

// A batch norm's arguments checked and laid out for the kernels.
struct Prepared {
  backend::BatchNormArgs a;
  MemoryFormat format = MemoryFormat::Contiguous;
  DType stat = kFloat32;    // of the statistics and parameters the kernels see
  Tensor x, w, b, rm, rv;   // rm, rv: in inference only
  Tensor out, save_mean, save_invstd, batch_var;  // outputs, allocated
};

Prepared prepare(const char* op, const Tensor& input, const Tensor& running_mean,
                 const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                 bool training, double eps) {
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
  Prepared p;
  backend::BatchNormArgs& a = p.a;
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
  p.format = input.suggest_memory_format();
  if (p.format == MemoryFormat::ChannelsLast) {
    a.batch *= a.spatial;
    a.spatial = 1;
  }

  p.stat = input.dtype() == kFloat64 ? kFloat64 : kFloat32;
  auto to_stat = [&](const Tensor& t) {
    return t.defined() ? t.to(p.stat).contiguous() : Tensor();
  };
  {
    NoGradGuard no_grad;
    p.x = input.contiguous(p.format);
    p.w = to_stat(weight);
    p.b = to_stat(bias);
    if (!training) {
      p.rm = to_stat(running_mean);
      p.rv = to_stat(running_var);
    }
  }
  TensorOptions sopts = TensorOptions(p.stat).device(input.device());
  p.out = Tensor::empty(input.shape(), input.options(), p.format);
  p.save_mean = Tensor::empty({C}, sopts);
  p.save_invstd = Tensor::empty({C}, sopts);
  if (training && running_var.defined()) p.batch_var = Tensor::empty({C}, sopts);
  return p;
}

void update_running_statistics(const Prepared& p, const Tensor& running_mean,
                               const Tensor& running_var, double momentum) {
  if (!p.a.training) return;
  if (running_mean.defined()) update_running(running_mean, p.save_mean, momentum);
  if (running_var.defined()) update_running(running_var, p.batch_var, momentum);
}

// What a backward keeps of `p`: not the output (its grad_fn would hold it: a cycle), nor what
// only the forward used.
Prepared for_backward(Prepared p) {
  p.out = p.rm = p.rv = p.batch_var = Tensor();
  return p;
}

// Parameter gradients of the statistics dtype, where wanted.
std::pair<Tensor, Tensor> parameter_grads(const Prepared& p, bool gw, bool gb, Device d) {
  const TensorOptions sopts = TensorOptions(p.stat).device(d);
  return {gw ? Tensor::empty({p.a.channels}, sopts) : Tensor(),
          gb ? Tensor::empty({p.a.channels}, sopts) : Tensor()};
}

}  // namespace

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  Prepared p =
      prepare("batch_norm", input, running_mean, running_var, weight, bias, training, eps);
  backend::batch_norm_kernels[input.device()](p.a, p.out, p.save_mean, p.save_invstd,
                                              p.batch_var, p.x, p.w, p.b, p.rm, p.rv);
  update_running_statistics(p, running_mean, running_var, momentum);

  const bool gx = input.requires_grad();
  const bool gw = weight.defined() && weight.requires_grad();
  const bool gb = bias.defined() && bias.requires_grad();
  return autograd::record(
      "BatchNormBackward", p.out, {input, weight, bias},
      [p = for_backward(p), gx, gw, gb](const Tensor& grad) -> std::vector<Tensor> {
        Tensor g = grad.to(p.x.dtype()).contiguous(p.format);
        Tensor dx = gx ? Tensor::empty(p.x.shape(), p.x.options(), p.format) : Tensor();
        auto [dw, db] = parameter_grads(p, gw, gb, g.device());
        backend::batch_norm_backward_kernels[g.device()](p.a, dx, dw, db, g, p.x, p.w,
                                                         p.save_mean, p.save_invstd);
        return {dx, dw, db};
      });
}

Tensor batch_norm_relu(const Tensor& input, const Tensor& running_mean,
                       const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                       bool training, double momentum, double eps, const Tensor& residual) {
  ANVIL_CHECK(!residual.defined() || (residual.shape() == input.shape() &&
                                      residual.dtype() == input.dtype()),
              ShapeError, "batch_norm_relu: expected a residual of the input's shape ",
              to_string(input.shape()), " and dtype ", dtype_name(input.dtype()), ", got ",
              residual.defined() ? to_string(residual.shape()) + " " +
                                       dtype_name(residual.dtype())
                                 : std::string());
  auto composed = [&] {
    Tensor y = batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps);
    return relu(residual.defined() ? add(y, residual) : y);
  };
  // The fused kernels exist where a backend registers them (cuDNN's NHWC batch norm with its
  // activation epilogue, for training); everything else composes the ops.
  if (!training || !backend::batch_norm_relu_kernels.has(input.device().kind)) return composed();
  Prepared p =
      prepare("batch_norm_relu", input, running_mean, running_var, weight, bias, training, eps);
  Tensor z;
  if (residual.defined()) {
    NoGradGuard no_grad;
    z = residual.contiguous(p.format);
  }
  Tensor reserve;
  if (!backend::batch_norm_relu_kernels[input.device()](p.a, p.out, p.save_mean, p.save_invstd,
                                                        p.batch_var, reserve, p.x, p.w, p.b, z))
    return composed();
  update_running_statistics(p, running_mean, running_var, momentum);

  const bool gx = input.requires_grad();
  const bool gw = weight.defined() && weight.requires_grad();
  const bool gb = bias.defined() && bias.requires_grad();
  const bool gz = residual.defined() && residual.requires_grad();
  const bool has_residual = residual.defined();
  const Tensor y = p.out.detach();  // the ReLU's output: its mask (a self-reference otherwise)
  return autograd::record(
      "BatchNormReluBackward", p.out, {input, weight, bias, residual},
      [p = for_backward(p), y, reserve, gx, gw, gb, gz,
       has_residual](const Tensor& grad) -> std::vector<Tensor> {
        Tensor g = grad.to(p.x.dtype()).contiguous(p.format);
        Tensor dx = Tensor::empty(p.x.shape(), p.x.options(), p.format);
        // The residual's gradient is written whenever the forward added one (the kernel's
        // shape follows the forward's), and handed back where it is wanted.
        Tensor dz = has_residual ? Tensor::empty(p.x.shape(), p.x.options(), p.format) : Tensor();
        auto [dw, db] = parameter_grads(p, gw, gb, g.device());
        if (!backend::batch_norm_relu_backward_kernels[g.device()](
                p.a, dx, dz, dw, db, g, p.x, y, p.w, p.b, p.save_mean, p.save_invstd, reserve)) {
          // The backend took the forward but not this backward: the ReLU's gradient from its
          // output, then the plain batch-norm backward.
          Tensor masked = mul(g, gt(y, 0.0).to(g.dtype()));
          if (has_residual) dz.copy_(masked);
          backend::batch_norm_backward_kernels[g.device()](p.a, dx, dw, db, masked, p.x, p.w,
                                                           p.save_mean, p.save_invstd);
        }
        return {gx ? dx : Tensor(), dw, db, gz ? dz : Tensor()};
      });
}

}  // namespace anvil
