#include "anvil/optim/clip_grad.h"

#include <cmath>

#include "anvil/autograd/grad_mode.h"
#include "anvil/core/error.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "backend/optim_kernels.h"

namespace anvil::optim {

Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  ANVIL_CHECK(norm_type > 0, ValueError,
              "clip_grad_norm_: expected norm_type > 0 (or INFINITY), got ", norm_type);
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return scalar_tensor(0.0);
  const Device device = grads[0].device();
  DType dtype = grads[0].dtype();
  for (const auto& g : grads) {
    ANVIL_CHECK(g.device() == device, DeviceError,
                "clip_grad_norm_: expected every gradient on one device, got ", device.str(),
                " and ", g.device().str());
    dtype = promote_types(dtype, g.dtype());
  }
  // The kernels take dense tensors; a strided gradient is scaled in a copy written back.
  std::vector<Tensor> dense;
  for (const auto& g : grads) dense.push_back(g.contiguous());
  // Two multi-tensor passes on the device: the norm, then the scaling by a coefficient the
  // device computes from it. No host round trip.
  Tensor total = Tensor::empty({}, TensorOptions(dtype).device(device));
  backend::grad_norm_kernels[device](dense, norm_type, total);
  if (error_if_nonfinite) {
    // Needs the value on the host: the one synchronisation, only when asked for.
    const double v = total.item<double>();
    ANVIL_CHECK(std::isfinite(v), ValueError, "clip_grad_norm_: the total norm of order ",
                norm_type, " of the gradients is ", v,
                ", so they cannot be clipped (pass error_if_nonfinite = false to clip anyway)");
  }
  backend::grad_scale_kernels[device](dense, total, max_norm);
  for (size_t i = 0; i < grads.size(); ++i)
    if (!dense[i].is_same(grads[i])) grads[i].copy_(dense[i]);
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  ANVIL_CHECK(clip_value >= 0, ValueError, "clip_grad_value_: expected clip_value >= 0, got ",
              clip_value);
  NoGradGuard no_grad;
  for (const auto& p : params)
    if (p.grad().defined()) p.grad().copy_(clamp(p.grad(), -clip_value, clip_value));
}

}  // namespace anvil::optim
