// Dropout composed from existing ops: the keep mask is rand(...) < 1 - p, with float32 draws
// whatever x's dtype (one Philox lane per element), so every backend that follows the
// generator's counter scheme drops the same elements for the same seed and offset.
#include "anvil/ops/dropout.h"

#include "anvil/autograd/node.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "ops/checks.h"

namespace anvil {

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  ops::check_defined(x, "dropout", "input");
  ANVIL_CHECK(p >= 0 && p <= 1, ValueError, "dropout: expected a probability p in [0, 1], got ", p);
  ops::check_floating(x, "dropout");
  if (!training || p == 0) return x;

  Tensor scale, out;  // scale: mask / (1 - p) in x's dtype
  {
    NoGradGuard no_grad;
    if (p == 1) {
      scale = zeros(x.shape(), x.options());
    } else {
      Tensor u = rand(x.shape(), TensorOptions(kFloat32).device(x.device()), gen);
      scale = mul(lt(u, 1.0 - p).to(x.dtype()), 1.0 / (1.0 - p));
    }
    out = mul(x, scale);
  }
  return autograd::record(
      "DropoutBackward", out, {x},
      [scale](const Tensor& g) -> std::vector<Tensor> { return {mul(g, scale)}; });
}

}  // namespace anvil
