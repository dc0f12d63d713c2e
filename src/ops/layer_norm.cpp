// layer_norm and rms_norm: argument checks, dispatch and gradients (own backward kernels).
#include "anvil/ops/layer_norm.h"

#include <algorithm>
#include <limits>

#include "amp/autocast_ops.h"
#include "anvil/autograd/node.h"
#include "anvil/ops/creation.h"
#include "backend/layer_norm_kernels.h"
#include "ops/checks.h"

namespace anvil {
namespace {

// A norm's arguments checked and laid out for the kernels.
struct Prepared {
  backend::NormArgs a;
  Shape normalized_shape;
  DType stat = kFloat32;  // of the statistics and of the parameters the kernels see
  Tensor x, w, b;         // contiguous; w, b in the statistics dtype (undefined when not given)
};

void check_parameter(const char* op, const Tensor& t, const Shape& normalized_shape,
                     const char* arg) {
  if (!t.defined()) return;
  ops::check_floating(t, op, arg);
  ANVIL_CHECK(t.shape() == normalized_shape, ShapeError, op, ": expected ", arg, " of shape ",
              to_string(normalized_shape), " (normalized_shape), got shape ",
              to_string(t.shape()));
}

Prepared prepare(const char* op, const Tensor& input, const Shape& normalized_shape,
                 const Tensor& weight, const Tensor& bias, double eps) {
  ops::check_defined(input, op, "input");
  ops::check_floating(input, op, "input");
  ops::check_same_device({input, weight, bias}, op);
  const Shape& ns = normalized_shape;
  const int64_t nd = int64_t(ns.size()), lead = input.dim() - nd;
  ANVIL_CHECK(nd >= 1, ShapeError, op,
              ": expected a normalized_shape of at least one dim, got []");
  ANVIL_CHECK(lead >= 0 && std::equal(ns.begin(), ns.end(), input.shape().begin() + lead),
              ShapeError, op, ": expected input of shape [*, ", to_string(ns).substr(1),
              " (its trailing dims normalized_shape ", to_string(ns), "), got shape ",
              to_string(input.shape()));
  check_parameter(op, weight, ns, "weight");
  check_parameter(op, bias, ns, "bias");
  ANVIL_CHECK(eps >= 0, ValueError, op, ": expected eps >= 0, got ", eps);

  Prepared p;
  p.normalized_shape = ns;
  p.a.cols = numel(ns);
  p.a.rows = 1;
  for (int64_t d = 0; d < lead; ++d) p.a.rows *= input.size(d);
  p.a.eps = eps;
  p.stat = input.dtype() == kFloat64 ? kFloat64 : kFloat32;
  NoGradGuard no_grad;  // the casts are not recorded: the gradients are cast back by the engine
  p.x = input.contiguous();
  if (weight.defined()) p.w = weight.to(p.stat).contiguous();
  if (bias.defined()) p.b = bias.to(p.stat).contiguous();
  return p;
}

TensorOptions stat_options(const Prepared& p) {
  return TensorOptions(p.stat).device(p.x.device());
}

// The parameter gradients in the statistics dtype, where wanted (normalized_shape each).
Tensor parameter_grad(const Prepared& p, bool wanted) {
  return wanted ? Tensor::empty(p.normalized_shape, stat_options(p)) : Tensor();
}

std::vector<Tensor> layer_norm_backward(const Prepared& p, const Tensor& mean,
                                        const Tensor& rstd, const Tensor& grad, bool gx,
                                        bool gw, bool gb) {
  Tensor dx = gx ? Tensor::empty(p.x.shape(), p.x.options()) : Tensor();
  if (p.a.rows * p.a.cols == 0) {  // no rows: the parameters get zero gradients
    const TensorOptions so = stat_options(p);
    return {dx, gw ? zeros(p.normalized_shape, so) : Tensor(),
            gb ? zeros(p.normalized_shape, so) : Tensor()};
  }
  Tensor dw = parameter_grad(p, gw), db = parameter_grad(p, gb);
  const Tensor g = grad.to(p.x.dtype()).contiguous();
  backend::layer_norm_backward_kernels[g.device()](p.a, dx, dw, db, g, p.x, p.w, mean, rstd);
  return {dx, dw, db};
}

std::vector<Tensor> rms_norm_backward(const Prepared& p, const Tensor& rstd, const Tensor& grad,
                                      bool gx, bool gw) {
  Tensor dx = gx ? Tensor::empty(p.x.shape(), p.x.options()) : Tensor();
  if (p.a.rows * p.a.cols == 0)
    return {dx, gw ? zeros(p.normalized_shape, stat_options(p)) : Tensor()};
  Tensor dw = parameter_grad(p, gw);
  const Tensor g = grad.to(p.x.dtype()).contiguous();
  backend::rms_norm_backward_kernels[g.device()](p.a, dx, dw, g, p.x, p.w, rstd);
  return {dx, dw};
}

}  // namespace

Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  if (amp::detail::autocast_active({&input, &weight, &bias}))
    return amp::detail::run_autocast(
        amp::detail::CastPolicy::Float32, {input, weight, bias},
        [&](const auto& t) { return layer_norm(t[0], normalized_shape, t[1], t[2], eps); });
  Prepared p = prepare("layer_norm", input, normalized_shape, weight, bias, eps);
  Tensor out = Tensor::empty(input.shape(), input.options());
  Tensor mean = Tensor::empty({p.a.rows}, stat_options(p));
  Tensor rstd = Tensor::empty({p.a.rows}, stat_options(p));
  if (p.a.rows * p.a.cols > 0)
    backend::layer_norm_kernels[input.device()](p.a, out, mean, rstd, p.x, p.w, p.b);

  const bool gx = input.requires_grad();
  const bool gw = weight.defined() && weight.requires_grad();
  const bool gb = bias.defined() && bias.requires_grad();
  p.b = Tensor();  // the backward does not read the bias
  return autograd::record(
      "LayerNormBackward", out, {input, weight, bias},
      [p, mean, rstd, gx, gw, gb](const Tensor& grad) -> std::vector<Tensor> {
        return layer_norm_backward(p, mean, rstd, grad, gx, gw, gb);
      });
}

Tensor rms_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight,
                std::optional<double> eps) {
  if (amp::detail::autocast_active({&input, &weight}))
    return amp::detail::run_autocast(
        amp::detail::CastPolicy::Float32, {input, weight},
        [&](const auto& t) { return rms_norm(t[0], normalized_shape, t[1], eps); });
  // torch's default: the machine epsilon of the type the norm computes in.
  const double e = eps.value_or(input.defined() && input.dtype() == kFloat64
                                    ? std::numeric_limits<double>::epsilon()
                                    : double(std::numeric_limits<float>::epsilon()));
  Prepared p = prepare("rms_norm", input, normalized_shape, weight, Tensor(), e);
  Tensor out = Tensor::empty(input.shape(), input.options());
  Tensor rstd = Tensor::empty({p.a.rows}, stat_options(p));
  if (p.a.rows * p.a.cols > 0) backend::rms_norm_kernels[input.device()](p.a, out, rstd, p.x, p.w);

  const bool gx = input.requires_grad();
  const bool gw = weight.defined() && weight.requires_grad();
  return autograd::record("RmsNormBackward", out, {input, weight},
                          [p, rstd, gx, gw](const Tensor& grad) -> std::vector<Tensor> {
                            return rms_norm_backward(p, rstd, grad, gx, gw);
                          });
}

}  // namespace anvil
