#include "anvil/nn/shape.h"

#include "nn/repr.h"

namespace anvil::nn {

Tensor Flatten::forward(const Tensor& x) { return x.flatten(start_dim, end_dim); }

std::string Flatten::extra_repr() const {
  return detail::cat("start_dim=", start_dim, ", end_dim=", end_dim);
}

Tensor Reshape::forward(const Tensor& x) {
  ANVIL_CHECK(x.defined() && x.dim() >= 1, ShapeError,
              "Reshape::forward: expected input [N, ...] with a batch dim, got ",
              x.defined() ? "shape " + to_string(x.shape()) : "an undefined tensor");
  Shape target{x.size(0)};
  target.insert(target.end(), shape.begin(), shape.end());
  return x.reshape(target);
}

std::string Reshape::extra_repr() const { return "shape=" + to_string(shape); }

}  // namespace anvil::nn
