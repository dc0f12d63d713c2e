#include "anvil/nn/sequence_pool.h"

#include "anvil/ops/reduction.h"
#include "nn/repr.h"

namespace anvil::nn {

Tensor MeanPool::forward(const Tensor& x) {
  ANVIL_CHECK(x.defined(), ShapeError,
              "MeanPool::forward: expected a tensor, got an undefined one");
  return mean(x, {dim});
}

std::string MeanPool::extra_repr() const { return detail::cat("dim=", dim); }

Tensor SelectToken::forward(const Tensor& x) {
  ANVIL_CHECK(x.defined() && dim >= -x.dim() && dim < x.dim(), IndexError,
              "SelectToken::forward: dim ", dim, " is out of range for ",
              x.defined() ? "shape " + to_string(x.shape()) : std::string("an undefined tensor"));
  const int64_t n = x.size(dim);
  ANVIL_CHECK(index >= -n && index < n, IndexError, "SelectToken::forward: index ", index,
              " is out of range for ", n, " positions (shape ", to_string(x.shape()), ")");
  return x.select(dim, index < 0 ? index + n : index);
}

std::string SelectToken::extra_repr() const { return detail::cat("index=", index, ", dim=", dim); }

}  // namespace anvil::nn
