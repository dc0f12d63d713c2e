// The autograd engine: accumulation, repeated inputs, broadcasting, no-grad, detach,
// retain_grad, graph reuse, and torch.autograd.grad-style calls.
#include "support/check.h"

using namespace anvil;

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = tensor(std::vector<double>{1, 2, 3}).requires_grad_();
  sum(mul(x, x)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 4, 6}));
  sum(mul(x, 3.0)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5, 7, 9}));
  x.grad().zero_();
  sum(x).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 1, 1}));
}

TEST(Autograd, RepeatedInputsAndDiamondsSumTheirPaths) {
  // y = x*x + x*(x+1): dy/dx = 2x + 2x + 1.
  Tensor x = tensor(std::vector<double>{0.5, -1.5}).requires_grad_();
  Tensor a = add(x, 1.0);
  Tensor y = add(mul(x, x), mul(x, a));
  y.backward(ones_like(y));
  EXPECT_TRUE(test::all_close(x.grad(), tensor(std::vector<double>{3, -5})));
}

TEST(Autograd, BroadcastGradientsSumBackToInputShape) {
  Tensor a = test::uniform({3, 1}, 1).requires_grad_();
  Tensor b = test::uniform({4}, 2).requires_grad_();
  Tensor c = test::uniform({}, 3).requires_grad_();
  EXPECT_TRUE(test::gradcheck([](auto& in) { return mul(add(in[0], in[1]), in[2]); }, {a, b, c}));
  EXPECT_TRUE(test::matches_torch("(a + b) * c - b / (c + 3)",
                                  {test::uniform({3, 1}, 1, -1, 1, kFloat32), test::uniform({4}, 2, -1, 1, kFloat32),
                                   test::uniform({}, 3, -1, 1, kFloat32)},
                                  [](auto& in) { return sub(mul(add(in[0], in[1]), in[2]), div(in[1], add(in[2], 3.0))); }));
}

TEST(Autograd, NoGradGuardAndDetachStopRecording) {
  Tensor x = ones({2}).requires_grad_();
  {
    NoGradGuard g;
    Tensor y = mul(x, 2.0);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    {
      EnableGradGuard e;
      EXPECT_TRUE(mul(x, 2.0).requires_grad());
    }
  }
  Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.storage(), x.storage());  // shares data
  Tensor y = mul(x, d);                 // d is a constant here
  sum(y).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{1, 1}));
}

TEST(Autograd, RetainGradKeepsIntermediateGradients) {
  Tensor x = tensor(std::vector<double>{1, 2}).requires_grad_();
  Tensor h = mul(x, 3.0);
  h.retain_grad();
  Tensor y = sum(mul(h, h));
  y.backward();
  EXPECT_EQ(h.grad().to_vector<double>(), (std::vector<double>{6, 12}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{18, 36}));
  EXPECT_FALSE(mul(x, 2.0).retains_grad());
}

TEST(Autograd, SecondBackwardNeedsRetainGraph) {
  Tensor x = tensor(std::vector<double>{2}).requires_grad_();
  Tensor y = sum(mul(x, x));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  EXPECT_EQ(x.grad().item<double>(), 8.0);
  EXPECT_TRUE(test::throws_with<AutogradError>([&] { y.backward(); }, {"second time", "retain_graph"}));
}

TEST(Autograd, GradFunctionDoesNotTouchDotGrad) {
  Tensor x = tensor(std::vector<double>{1, 2, 3}).requires_grad_();
  Tensor w = tensor(std::vector<double>{4, 5, 6}).requires_grad_();
  Tensor h = mul(x, w);
  auto g = autograd::grad({sum(mul(h, h))}, {x, h});
  EXPECT_FALSE(x.grad().defined());
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{32, 100, 216}));  // 2 h w
  EXPECT_EQ(g[1].to_vector<double>(), (std::vector<double>{8, 20, 36}));     // 2 h
}

TEST(Autograd, MisuseGetsClearErrors) {
  Tensor x = ones({3}).requires_grad_();
  Tensor y = mul(x, 2.0);
  EXPECT_TRUE(test::throws_with<AutogradError>([&] { y.backward(); }, {"backward", "one-element", "[3]"}));
  EXPECT_TRUE(test::throws_with<AutogradError>([] { ones({1}).backward(); }, {"backward", "does not require grad"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { y.backward(ones({2})); }, {"backward", "[2]", "[3]"}));
  EXPECT_TRUE(test::throws_with<AutogradError>([&] { y.requires_grad_(false); }, {"requires_grad_", "leaf", "MulBackward"}));
  EXPECT_TRUE(test::throws_with<AutogradError>([&] { x.fill_(1); }, {"fill_", "in-place", "NoGradGuard"}));
  {
    NoGradGuard g;
    x.fill_(2);  // allowed: optimizers update parameters like this
  }
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{2, 2, 2}));
}

TEST(Autograd, LeafGradientIsIndependentMemory) {
  // add's backward hands the same gradient to both inputs; each leaf must own its own.
  Tensor a = zeros({2}).requires_grad_(), b = zeros({2}).requires_grad_();
  add(a, b).backward(ones({2}));
  EXPECT_NE(a.grad().storage(), b.grad().storage());
  {
    NoGradGuard g;
    Tensor ga = a.grad();
    ga.fill_(5);
  }
  EXPECT_EQ(b.grad().to_vector<float>(), (std::vector<float>{1, 1}));
}

// Slices' gradients go into their input's gradient in place (autograd::SliceNode): overlapping
// slices, a step, a use of the whole tensor besides, an intermediate (non-leaf) input, and
// autograd::grad must all give the float64 sums a dense computation gives.
TEST(Autograd, SlicesOfOneTensorAddTheirGradients) {
  const Tensor x0 = test::uniform({6, 5}, 3, -1, 1, kFloat64);
  const Tensor w = test::uniform({6, 5}, 4, -1, 1, kFloat64);
  auto loss_of = [&](const Tensor& x) {
    Tensor h = mul(x, 2.0);  // an intermediate: its buffer is the engine's
    Tensor l = sum(mul(h.narrow(0, 0, 4), w.narrow(0, 0, 4)));
    l = add(l, sum(mul(h.narrow(0, 2, 4), w.narrow(0, 1, 4))));  // overlaps the first
    l = add(l, sum(h.select(1, 3)));
    l = add(l, sum(mul(h.slice(0, 1, 6, 2), 3.0)));
    return add(l, sum(mul(h, h)));  // and the whole of h
  };
  // d/dx by hand: 2 * (w over rows 0-3, + w rows 1-4 over rows 2-5, + 1 in column 3,
  // + 3 on rows 1, 3, 5) + 8 x.
  Tensor want = mul(x0, 8.0);
  auto add_rows = [&](int64_t row, int64_t n, const Tensor& v) {
    Tensor part = want.narrow(0, row, n);
    add_(part, mul(v, 2.0));
  };
  add_rows(0, 4, w.narrow(0, 0, 4));
  add_rows(2, 4, w.narrow(0, 1, 4));
  Tensor col = want.select(1, 3);
  add_(col, 2.0);
  for (int64_t r : {1, 3, 5}) {
    Tensor row = want.select(0, r);
    add_(row, 6.0);
  }
  Tensor x = x0.clone().requires_grad_();
  loss_of(x).backward();
  EXPECT_TRUE(test::all_close(x.grad(), want, 1e-12, 1e-12));
  Tensor y = x0.clone().requires_grad_();
  EXPECT_TRUE(test::all_close(autograd::grad({loss_of(y)}, {y})[0], want, 1e-12, 1e-12));
  // Slices of a leaf: the leaf's .grad is fresh memory, not the engine's buffer.
  Tensor z = x0.clone().requires_grad_();
  add(sum(z.narrow(1, 0, 2)), sum(z.narrow(1, 1, 3))).backward();
  Tensor ones_cols = zeros({6, 5}, kFloat64);
  Tensor c0 = ones_cols.narrow(1, 0, 2), c1 = ones_cols.narrow(1, 1, 3);
  add_(c0, 1.0);
  add_(c1, 1.0);
  EXPECT_TRUE(equal(z.grad(), ones_cols));
}
