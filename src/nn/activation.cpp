#include "anvil/nn/activation.h"

#include "anvil/ops/activation.h"
#include "nn/repr.h"

namespace anvil::nn {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, negative_slope); }
std::string LeakyReLU::extra_repr() const {
  return "negative_slope=" + detail::repr(negative_slope);
}

Tensor ELU::forward(const Tensor& x) { return elu(x, alpha); }
std::string ELU::extra_repr() const { return "alpha=" + detail::repr(alpha); }

Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor SiLU::forward(const Tensor& x) { return silu(x); }

GELU::GELU(std::string approximate) : approximate(std::move(approximate)) {
  ANVIL_CHECK(this->approximate == "none" || this->approximate == "tanh", ValueError,
              "GELU: expected approximate \"none\" or \"tanh\", got \"", this->approximate, "\"");
}
Tensor GELU::forward(const Tensor& x) { return gelu(x, approximate); }
std::string GELU::extra_repr() const { return "approximate='" + approximate + "'"; }

Tensor Softmax::forward(const Tensor& x) { return softmax(x, dim); }
std::string Softmax::extra_repr() const { return detail::cat("dim=", dim); }

Tensor LogSoftmax::forward(const Tensor& x) { return log_softmax(x, dim); }
std::string LogSoftmax::extra_repr() const { return detail::cat("dim=", dim); }

}  // namespace anvil::nn
