#include "anvil/nn/layer_norm.h"

#include "anvil/autograd/grad_mode.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/layer_norm.h"
#include "nn/repr.h"

namespace anvil::nn {
namespace {

void check_arguments(const char* layer, const Shape& normalized_shape, std::optional<double> eps) {
  ANVIL_CHECK(!normalized_shape.empty(), ValueError, layer,
              ": expected a normalized_shape of at least one dim, got []");
  for (int64_t d : normalized_shape)
    ANVIL_CHECK(d > 0, ValueError, layer, ": expected positive sizes in normalized_shape, got ",
                to_string(normalized_shape));
  ANVIL_CHECK(!eps || *eps >= 0, ValueError, layer, ": expected eps >= 0, got ", eps.value_or(0));
}

// Python's tuple: (768,) or (4, 5).
std::string tuple_repr(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

}  // namespace

LayerNorm::LayerNorm(Shape normalized_shape, double eps, bool elementwise_affine, bool bias)
    : normalized_shape(std::move(normalized_shape)),
      eps(eps),
      elementwise_affine(elementwise_affine) {
  check_arguments("LayerNorm", this->normalized_shape, eps);
  const Shape& ns = this->normalized_shape;
  weight = register_parameter("weight", elementwise_affine ? empty(ns) : Tensor());
  this->bias = register_parameter("bias", elementwise_affine && bias ? empty(ns) : Tensor());
  reset_parameters();
}

void LayerNorm::reset_parameters() {
  NoGradGuard no_grad;
  if (weight.defined()) weight.fill_(1);
  if (bias.defined()) bias.zero_();
}

Tensor LayerNorm::forward(const Tensor& x) {
  return layer_norm(x, normalized_shape, weight, bias, eps);
}

std::string LayerNorm::extra_repr() const {
  return detail::cat(tuple_repr(normalized_shape), ", eps=", detail::repr(eps),
                     ", elementwise_affine=", detail::repr(elementwise_affine),
                     ", bias=", detail::repr(bias.defined()));
}

RMSNorm::RMSNorm(Shape normalized_shape, std::optional<double> eps, bool elementwise_affine)
    : normalized_shape(std::move(normalized_shape)),
      eps(eps),
      elementwise_affine(elementwise_affine) {
  check_arguments("RMSNorm", this->normalized_shape, eps);
  weight =
      register_parameter("weight", elementwise_affine ? empty(this->normalized_shape) : Tensor());
  reset_parameters();
}

void RMSNorm::reset_parameters() {
  NoGradGuard no_grad;
  if (weight.defined()) weight.fill_(1);
}

Tensor RMSNorm::forward(const Tensor& x) { return rms_norm(x, normalized_shape, weight, eps); }

std::string RMSNorm::extra_repr() const {
  return detail::cat(tuple_repr(normalized_shape),
                     ", eps=", eps ? detail::repr(*eps) : std::string("none"),
                     ", elementwise_affine=", detail::repr(elementwise_affine));
}

}  // namespace anvil::nn
