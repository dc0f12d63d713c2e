#include "anvil/nn/linear.h"

#include <cmath>

#include "anvil/nn/init.h"
#include "anvil/ops/creation.h"
#include "nn/repr.h"

namespace anvil::nn {

Linear::Linear(int64_t in_features, int64_t out_features, bool bias)
    : in_features(in_features), out_features(out_features) {
  ANVIL_CHECK(in_features >= 0 && out_features >= 0, ValueError,
              "Linear: expected non-negative in_features and out_features, got ", in_features,
              " and ", out_features);
  weight = register_parameter("weight", empty({out_features, in_features}));
  this->bias = register_parameter("bias", bias ? empty({out_features}) : Tensor());
  reset_parameters();
}

void Linear::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = in_features > 0 ? 1 / std::sqrt(double(in_features)) : 0;
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& x) { return forward_act(x, Activation::None); }

Tensor Linear::forward_act(const Tensor& x, Activation act) {
  ANVIL_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == in_features, ShapeError,
              "Linear::forward: expected input [..., ", in_features, "], got ",
              x.defined() ? "shape " + to_string(x.shape()) : "an undefined tensor");
  // The bias add rides in the product even without an activation.
  return linear_act(x, weight, bias, act);
}

std::string Linear::extra_repr() const {
  return detail::cat("in_features=", in_features, ", out_features=", out_features,
                     ", bias=", detail::repr(bias.defined()));
}

}  // namespace anvil::nn
