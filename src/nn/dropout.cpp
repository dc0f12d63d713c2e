#include "anvil/nn/dropout.h"

#include "anvil/ops/dropout.h"
#include "nn/repr.h"

namespace anvil::nn {

Dropout::Dropout(double p) : p(p) {
  ANVIL_CHECK(p >= 0 && p <= 1, ValueError,
              "Dropout: expected a probability p between 0 and 1, got ", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training()); }

std::string Dropout::extra_repr() const { return "p=" + detail::repr(p); }

}  // namespace anvil::nn
