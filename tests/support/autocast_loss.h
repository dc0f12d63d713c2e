// Cross-entropy under autocast on 16-bit logits against the same logits cast to float32 by
// hand: the loss (float32) and the logits' gradient must be bit for bit those of the cast
// path, on any device. Rows of [rows, classes] logits in [-4, 4] with a few -inf entries.
#pragma once
#include <vector>

#include "anvil/amp/amp.h"
#include "support/check.h"

namespace anvil::test {

struct AutocastLossCheck {
  Tensor fused_loss, cast_loss, fused_grad, cast_grad;
};

inline AutocastLossCheck autocast_cross_entropy(Device device, DType low, int64_t rows,
                                                int64_t classes, uint64_t seed) {
  Tensor x = uniform({rows, classes}, seed, -4, 4, kFloat32);
  x.narrow(0, 0, 1).narrow(1, 1, 2).fill_(-INFINITY);  // exp(-inf) adds nothing
  x = x.to(low).to(device);
  std::vector<int64_t> ids;  // row 0's target (3) is finite
  for (int64_t i = 0; i < rows; ++i) ids.push_back((i * 7 + 3) % classes);
  const Tensor t = tensor(ids, {rows}).to(device);
  AutocastLossCheck r;
  Tensor a = x.detach().requires_grad_();
  {
    amp::autocast ac(device.kind, low);
    r.fused_loss = cross_entropy(a, t);
  }
  r.fused_loss.backward();
  r.fused_grad = a.grad();
  Tensor b = x.detach().requires_grad_();
  r.cast_loss = cross_entropy(b.to(kFloat32), t);
  r.cast_loss.backward();
  r.cast_grad = b.grad();
  return r;
}

}  // namespace anvil::test
