// autograd::checkpoint: the recomputed backward gives the gradients of the plain one, with the
// same dropout draws and under the forward's autocast state; without grad it is the call itself.
#include "anvil/amp/autocast.h"
#include "anvil/anvil.h"
#include "anvil/autograd/checkpoint.h"
#include "support/check.h"

using namespace anvil;

namespace {

// tanh(x W) with dropout: a product autocast lowers, and a random draw.
Tensor segment(const Tensor& x, const Tensor& w) {
  return dropout(anvil::tanh(matmul(x, w)), 0.3, /*training=*/true);
}

struct Grads {
  Tensor loss, dx, dw;
};

Grads run(bool checkpointed, bool autocast) {
  Tensor x = test::uniform({6, 5}, 1, -1, 1, kFloat32).requires_grad_();
  Tensor w = test::uniform({5, 4}, 2, -1, 1, kFloat32).requires_grad_();
  manual_seed(7);
  Tensor y;
  {
    amp::autocast region(DeviceKind::CPU, kBFloat16, autocast);
    y = checkpointed
            ? autograd::checkpoint([&](const auto& in) { return segment(in[0], w); }, {x}, {w})
            : segment(x, w);
  }
  Tensor loss = sum(mul(y.to(kFloat32), y.to(kFloat32)));
  loss.backward();  // outside the autocast region, as a training step runs it
  return {loss, x.grad(), w.grad()};
}

TEST(ActivationCheckpoint, GivesThePlainGradientsWithTheSameDropout) {
  Grads plain = run(false, false), recomputed = run(true, false);
  EXPECT_TRUE(equal(plain.loss, recomputed.loss));
  EXPECT_TRUE(equal(plain.dx, recomputed.dx));
  EXPECT_TRUE(equal(plain.dw, recomputed.dw));
}

TEST(ActivationCheckpoint, RecomputesUnderTheForwardsAutocast) {
  Grads plain = run(false, true), recomputed = run(true, true);
  // bfloat16 products: a recomputation in float32 would differ.
  ASSERT_FALSE(equal(plain.dw, run(false, false).dw));
  EXPECT_TRUE(equal(plain.dx, recomputed.dx));
  EXPECT_TRUE(equal(plain.dw, recomputed.dw));
  EXPECT_FALSE(amp::is_autocast_enabled(DeviceKind::CPU));
}

TEST(ActivationCheckpoint, WithoutGradItIsTheCall) {
  Tensor x = test::uniform({3, 5}, 3), w = test::uniform({5, 2}, 4);
  Tensor y = autograd::checkpoint([&](const auto& in) { return matmul(in[0], w); }, {x}, {w});
  EXPECT_FALSE(y.requires_grad());
  EXPECT_TRUE(equal(y, matmul(x, w)));
}

}  // namespace
