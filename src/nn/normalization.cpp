#include "anvil/nn/normalization.h"

#include "anvil/autograd/grad_mode.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/normalization.h"
#include "nn/repr.h"

namespace anvil::nn {

BatchNorm::BatchNorm(int64_t num_features, double eps, std::optional<double> momentum, bool affine,
                     bool track_running_stats)
    : num_features(num_features),
      eps(eps),
      momentum(momentum),
      affine(affine),
      track_running_stats(track_running_stats) {
  ANVIL_CHECK(num_features > 0, ValueError, "BatchNorm: expected num_features > 0, got ",
              num_features);
  ANVIL_CHECK(eps >= 0, ValueError, "BatchNorm: expected eps >= 0, got ", eps);
  ANVIL_CHECK(!momentum || (*momentum >= 0 && *momentum <= 1), ValueError,
              "BatchNorm: expected momentum in [0, 1] (or unset), got ", *momentum);
  weight = register_parameter("weight", affine ? empty({num_features}) : Tensor());
  bias = register_parameter("bias", affine ? empty({num_features}) : Tensor());
  running_mean =
      register_buffer("running_mean", track_running_stats ? empty({num_features}) : Tensor());
  running_var =
      register_buffer("running_var", track_running_stats ? empty({num_features}) : Tensor());
  num_batches_tracked =
      register_buffer("num_batches_tracked", track_running_stats ? zeros({}, kInt64) : Tensor());
  reset_parameters();
}

void BatchNorm::reset_running_stats() {
  if (!track_running_stats) return;
  NoGradGuard no_grad;
  running_mean.zero_();
  running_var.fill_(1);
  num_batches_tracked.zero_();
}

void BatchNorm::reset_parameters() {
  reset_running_stats();
  if (!affine) return;
  NoGradGuard no_grad;
  weight.fill_(1);
  bias.zero_();
}

Tensor BatchNorm::forward(const Tensor& x) { return forward_relu_impl(x, Tensor(), false); }

Tensor BatchNorm::forward_relu(const Tensor& x, const Tensor& residual) {
  return forward_relu_impl(x, residual, true);
}

Tensor BatchNorm::forward_relu_impl(const Tensor& x, const Tensor& residual, bool relu) {
  ANVIL_CHECK(x.defined(), ShapeError, name(),
              "::forward: expected an input, got an undefined tensor");
  check_input(x);
  ANVIL_CHECK(x.size(1) == num_features, ShapeError, name(), "::forward: expected ", num_features,
              " channels (dim 1), got shape ", to_string(x.shape()));
  double factor = momentum.value_or(0.0);
  if (is_training() && track_running_stats) {
    NoGradGuard no_grad;
    add_(num_batches_tracked, 1);
    if (!momentum) factor = 1.0 / double(num_batches_tracked.item<int64_t>());
  }
  // Batch statistics in training, and in eval when nothing is tracked.
  const bool use_batch = is_training() || !running_mean.defined();
  if (!relu) return batch_norm(x, running_mean, running_var, weight, bias, use_batch, factor, eps);
  return batch_norm_relu(x, running_mean, running_var, weight, bias, use_batch, factor, eps,
                         residual);
}

std::string BatchNorm::extra_repr() const {
  return detail::cat(num_features, ", eps=", detail::repr(eps),
                     ", momentum=", momentum ? detail::repr(*momentum) : std::string("none"),
                     ", affine=", detail::repr(affine),
                     ", track_running_stats=", detail::repr(track_running_stats));
}

void BatchNorm1d::check_input(const Tensor& x) const {
  ANVIL_CHECK(x.dim() == 2 || x.dim() == 3, ShapeError,
              "BatchNorm1d::forward: expected 2D or 3D input ([N, C] or [N, C, L]), got shape ",
              to_string(x.shape()));
}

void BatchNorm2d::check_input(const Tensor& x) const {
  ANVIL_CHECK(x.dim() == 4, ShapeError,
              "BatchNorm2d::forward: expected 4D input [N, C, H, W], got shape ",
              to_string(x.shape()));
}

}  // namespace anvil::nn
