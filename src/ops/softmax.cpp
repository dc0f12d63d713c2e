// softmax and log_softmax: dim handling, dispatch and gradients (own backward kernel).
#include "amp/autocast_ops.h"
#include "anvil/autograd/node.h"
#include "anvil/ops/activation.h"
#include "backend/softmax_kernels.h"
#include "ops/checks.h"

namespace anvil {
namespace {

backend::SoftmaxArgs layout(const Tensor& x, int64_t d, bool log) {
  backend::SoftmaxArgs s;
  s.log = log;
  const Shape& sh = x.shape();
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (i < d) s.outer *= sh[i];
    if (i == d) s.n = sh[i];
    if (i > d) s.inner *= sh[i];
  }
  return s;
}

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  ops::check_defined(x, op, "input");
  ops::check_floating(x, op);
  const int64_t d = wrap_dim(dim, x.dim(), op);
  const backend::SoftmaxArgs s = layout(x, d, log);
  Tensor y = Tensor::empty(x.shape(), x.options());
  if (y.numel() > 0) {
    NoGradGuard no_grad;
    backend::softmax_kernels[x.device()](s, y, x.contiguous());
  }
  Tensor saved = y.detach();  // the output, without a reference cycle through its own node
  return autograd::record(log ? "LogSoftmaxBackward" : "SoftmaxBackward", y, {x},
                          [s, saved](const Tensor& g) -> std::vector<Tensor> {
                            Tensor gx = Tensor::empty(saved.shape(), saved.options());
                            if (gx.numel() > 0)
                              backend::softmax_backward_kernels[saved.device()](
                                  s, gx, g.to(saved.dtype()).contiguous(), saved);
                            return {gx};
                          });
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  if (amp::detail::autocast_active({&x}))
    return amp::detail::run_autocast(amp::detail::CastPolicy::Float32, {x},
                                     [&](const auto& t) { return softmax(t[0], dim); });
  return softmax_impl(x, dim, false);
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  if (amp::detail::autocast_active({&x}))
    return amp::detail::run_autocast(amp::detail::CastPolicy::Float32, {x},
                                     [&](const auto& t) { return log_softmax(t[0], dim); });
  return softmax_impl(x, dim, true);
}

}  // namespace anvil
