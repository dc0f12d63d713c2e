// conv2d: closed-form values, finite-difference gradients, agreement with PyTorch, errors.
#include "support/check.h"

using namespace anvil;

namespace {

Tensor t64(std::vector<double> v, const Shape& s) { return tensor(v, s); }
Tensor iota(const Shape& s) {  // 1, 2, 3, ... in float64
  std::vector<double> v(size_t(numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(i + 1);
  return tensor(v, s);
}
Tensor u32(const Shape& s, uint64_t seed) { return test::uniform(s, seed, -1, 1, kFloat32); }

TEST(Conv2d, Conv2dReluIsReluOfConv2d) {
  // Bit for bit, in every floating dtype, with and without bias, NaN passing through; and the
  // gradients equal relu(conv2d(...))'s.
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kFloat16})
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + (with_bias ? " bias" : ""));
      Tensor x = u32({2, 3, 7, 6}, 40).to(dt);
      {
        NoGradGuard no_grad;
        x.narrow(0, 0, 1).narrow(2, 2, 1).narrow(3, 3, 1).fill_(NAN);
      }
      const Tensor w0 = u32({4, 3, 3, 3}, 41).to(dt), b0 = u32({4}, 42).to(dt);
      Tensor w1 = w0.clone().requires_grad_(), w2 = w0.clone().requires_grad_();
      Tensor b1 = with_bias ? b0.clone().requires_grad_() : Tensor();
      Tensor b2 = with_bias ? b0.clone().requires_grad_() : Tensor();
      Tensor fused = conv2d_relu(x, w1, b1, {1, 1}, {1, 1});
      Tensor composed = relu(conv2d(x, w2, b2, {1, 1}, {1, 1}));
      EXPECT_EQ(fused.grad_fn()->name(), "Conv2dReluBackward");
      EXPECT_TRUE(test::all_close(fused, composed, 0, 0));
      Tensor g = u32(fused.shape(), 43).to(dt);
      // Away from the NaN, whose gradients are NaN either way.
      fused.narrow(0, 1, 1).backward(g.narrow(0, 1, 1));
      composed.narrow(0, 1, 1).backward(g.narrow(0, 1, 1));
      EXPECT_TRUE(test::all_close(w1.grad(), w2.grad(), 0, 0));
      if (with_bias) {
        EXPECT_TRUE(test::all_close(b1.grad(), b2.grad(), 0, 0));
      }
    }
}

TEST(Conv2d, SequentialFusesConv2dThenRelu) {
  manual_seed(3);
  auto seq = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Conv2d>(3, 5, 3), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Conv2d>(5, 2, 3)});
  Tensor x = u32({2, 3, 9, 9}, 44);
  Tensor fused = seq->forward(x);
  Tensor plain = x;
  for (const auto& [name, m] : seq->named_children()) plain = m->forward(plain);
  EXPECT_TRUE(test::all_close(fused, plain, 0, 0));
  // The first convolution's node carries the ReLU.
  const auto& next = fused.grad_fn()->next;
  bool found = false;
  for (const auto& n : next)
    if (n && n->name() == "Conv2dReluBackward") found = true;
  EXPECT_TRUE(found);
}

}  // namespace

TEST(Conv2d, ForwardClosedForm) {
  Tensor x = iota({1, 1, 3, 3});  // [[1,2,3],[4,5,6],[7,8,9]]
  Tensor w = ones({1, 1, 2, 2}, kFloat64);
  Tensor b = t64({0.5}, {1});
  EXPECT_TRUE(test::all_close(conv2d(x, w, b), t64({12.5, 16.5, 24.5, 28.5}, {1, 1, 2, 2})));
  // stride 2, padding 1: windows clipped by the zero border
  EXPECT_TRUE(test::all_close(conv2d(x, w, Tensor(), {2, 2}, {1, 1}), t64({1, 5, 11, 28}, {1, 1, 2, 2})));
  // dilation 2: the four corners
  EXPECT_TRUE(test::all_close(conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {2, 2}), t64({20}, {1, 1, 1, 1})));
  // groups 2 with 1x1 kernels scales each channel by its own weight
  Tensor x2 = iota({1, 2, 1, 2});
  Tensor w2 = t64({2, 3}, {2, 1, 1, 1});
  EXPECT_TRUE(test::all_close(conv2d(x2, w2, Tensor(), {1, 1}, {0, 0}, {1, 1}, 2),
                              t64({2, 4, 9, 12}, {1, 2, 1, 2})));
  // unbatched input gives an unbatched output
  Tensor y = conv2d(iota({1, 3, 3}), w, b);
  EXPECT_EQ(y.shape(), (Shape{1, 2, 2}));
  EXPECT_TRUE(test::all_close(y, t64({12.5, 16.5, 24.5, 28.5}, {1, 2, 2})));
}

TEST(Conv2d, BackwardClosedForm) {
  // d sum(conv(x, ones 2x2)) / dx counts the windows each pixel is in; dw = window sums.
  Tensor x = iota({1, 1, 3, 3}).requires_grad_();
  Tensor w = ones({1, 1, 2, 2}, kFloat64).requires_grad_();
  Tensor b = t64({0}, {1}).requires_grad_();
  sum(conv2d(x, w, b)).backward();
  EXPECT_TRUE(test::all_close(x.grad(), t64({1, 2, 1, 2, 4, 2, 1, 2, 1}, {1, 1, 3, 3})));
  EXPECT_TRUE(test::all_close(w.grad(), t64({12, 16, 24, 28}, {1, 1, 2, 2})));
  EXPECT_TRUE(test::all_close(b.grad(), t64({4}, {1})));
}

TEST(Conv2d, Gradcheck) {
  struct Case {
    Shape x, w;
    Pair stride, padding, dilation;
    int64_t groups;
  };
  std::vector<Case> cases = {
      {{2, 4, 5, 5}, {4, 2, 3, 3}, {2, 2}, {1, 1}, {1, 1}, 2},  // groups 2, stride 2, padding 1
      {{2, 2, 5, 5}, {3, 2, 2, 2}, {1, 1}, {1, 1}, {2, 2}, 1},  // dilation 2
      {{1, 3, 5, 4}, {2, 3, 3, 1}, {2, 1}, {0, 1}, {1, 2}, 1},  // mixed per-axis settings
      {{3, 5, 4}, {6, 1, 2, 2}, {1, 1}, {0, 0}, {1, 1}, 3},     // unbatched, depthwise-like
  };
  uint64_t seed = 10;
  for (const Case& c : cases) {
    Tensor x = test::uniform(c.x, seed++).requires_grad_();
    Tensor w = test::uniform(c.w, seed++).requires_grad_();
    Tensor b = test::uniform({c.w[0]}, seed++).requires_grad_();
    EXPECT_TRUE(test::gradcheck(
        [&](const std::vector<Tensor>& v) {
          return conv2d(v[0], v[1], v[2], c.stride, c.padding, c.dilation, c.groups);
        },
        {x, w, b}))
        << "input " << to_string(c.x) << " weight " << to_string(c.w);
  }
  // without bias
  Tensor x = test::uniform({2, 2, 4, 4}, 1).requires_grad_();
  Tensor w = test::uniform({2, 2, 3, 3}, 2).requires_grad_();
  EXPECT_TRUE(test::gradcheck(
      [](const std::vector<Tensor>& v) { return conv2d(v[0], v[1], Tensor(), {1, 1}, {1, 1}); },
      {x, w}));
}

TEST(Conv2d, MatchesTorch) {
  // contiguous
  EXPECT_TRUE(test::matches_torch("F.conv2d(a, b, c)", {u32({2, 3, 7, 6}, 1), u32({4, 3, 3, 3}, 2), u32({4}, 3)},
                                  [](auto& v) { return conv2d(v[0], v[1], v[2]); }));
  // groups 2, stride 2, padding 1; the input is a permuted (NHWC-strided) view
  Tensor x = u32({2, 7, 6, 4}, 4).permute({0, 3, 1, 2});
  ASSERT_FALSE(x.is_contiguous());
  EXPECT_TRUE(test::matches_torch(
      "F.conv2d(a, b, c, stride=2, padding=1, groups=2)", {x, u32({6, 2, 3, 3}, 5), u32({6}, 6)},
      [](auto& v) { return conv2d(v[0], v[1], v[2], {2, 2}, {1, 1}, {1, 1}, 2); }));
  // dilation 2, asymmetric stride/padding, a transposed weight view and no bias
  Tensor w = u32({3, 2, 2, 4}, 7).transpose(2, 3);  // [3, 2, 4, 2]
  EXPECT_TRUE(test::matches_torch(
      "F.conv2d(a, b, None, stride=(1, 2), padding=(2, 0), dilation=2)", {u32({3, 2, 9, 8}, 8), w},
      [](auto& v) { return conv2d(v[0], v[1], Tensor(), {1, 2}, {2, 0}, {2, 2}); }));
  // a sliced (strided) input, unbatched
  Tensor xs = u32({4, 10, 9}, 9).slice(1, 0, 10, 2);  // [4, 5, 9]
  EXPECT_TRUE(test::matches_torch("F.conv2d(a, b, c, padding=1, groups=4)",
                                  {xs, u32({8, 1, 3, 3}, 10), u32({8}, 11)},
                                  [](auto& v) { return conv2d(v[0], v[1], v[2], {1, 1}, {1, 1}, {1, 1}, 4); }));
  // float64
  EXPECT_TRUE(test::matches_torch(
      "F.conv2d(a, b, c, stride=2, dilation=(1, 2))",
      {test::uniform({2, 3, 8, 9}, 12), test::uniform({5, 3, 3, 2}, 13), test::uniform({5}, 14)},
      [](auto& v) { return conv2d(v[0], v[1], v[2], {2, 2}, {0, 0}, {1, 2}); },
      {1e-10, 1e-12}));
}

TEST(Conv2d, LargeBatchUsesThreads) {
  // Big enough to split images across threads and sum per-thread weight gradients.
  // Sums of 16*9 = 144 float32 products per output (and N*OH*OW = 2048 for the weight
  // gradient) accumulate in a different order than torch's kernels; outputs near zero lose
  // ~1e-6 to cancellation: rtol 1e-4, atol 1e-5.
  EXPECT_TRUE(test::matches_torch(
      "F.conv2d(a, b, c, padding=1)", {u32({8, 16, 16, 16}, 20), u32({8, 16, 3, 3}, 21), u32({8}, 22)},
      [](auto& v) { return conv2d(v[0], v[1], v[2], {1, 1}, {1, 1}); }, {1e-4, 1e-5}));
}

TEST(Conv2d, HalfPrecision) {
  // Bounds from the arithmetic, per element, for eps = test::epsilon(t) (2^-10 float16, 2^-7
  // bfloat16). The 16-bit inputs are the float32 ones rounded once (each moved by at most eps/2
  // of itself), so a product x * w moves by at most eps |x| |w|; the bias by eps/2 |b|; the
  // sum accumulates in float32 (under 2^-20 of the magnitudes for these 18 products) and rounds
  // once to 16 bits (eps/2 |y|). Hence |y - ref| <= (eps + 2^-20) conv(|x|, |w|)
  // + eps/2 (|b| + |ref|) + one rounding of the difference itself (eps/2 of the bound).
  Tensor x = u32({2, 4, 6, 6}, 30), w = u32({4, 2, 3, 3}, 31), b = u32({4}, 32);
  auto conv = [](const Tensor& in, const Tensor& k, const Tensor& bias = Tensor()) {
    return conv2d(in, k, bias, {1, 1}, {1, 1}, {1, 1}, 2);
  };
  Tensor ref = conv(x, w, b), magnitude = conv(abs(x), abs(w));
  // The gradients of sum(y): grad_x sums w over the outputs each input reaches, grad_w sums x
  // over the positions: only the other operand's roundings (eps/2 each) enter, then the
  // result's. Their magnitudes are the same sums over |w| and |x|.
  Tensor xf = x.detach().requires_grad_(), wf = w.detach().requires_grad_();
  sum(conv(xf, wf)).backward();
  Tensor xa = x.detach().requires_grad_(), wa = w.detach().requires_grad_();
  sum(conv(xa, abs(w))).backward();
  sum(conv(abs(x), wa)).backward();
  const Tensor grad_x_magnitude = xa.grad(), grad_w_magnitude = wa.grad();
  for (DType t : {kFloat16, kBFloat16}) {
    SCOPED_TRACE(dtype_name(t));
    const double eps = test::epsilon(t), acc = std::ldexp(1.0, -20);
    Tensor y = conv(x.to(t), w.to(t), b.to(t));
    EXPECT_EQ(y.dtype(), t);
    Tensor bound = add(mul(magnitude, eps + acc),
                       mul(add(abs(b).view({1, 4, 1, 1}), abs(ref)), eps / 2));
    EXPECT_TRUE(test::within(y, ref, mul(bound, 1 + eps / 2)));
    Tensor xh = x.to(t).requires_grad_(), wh = w.to(t).requires_grad_();
    sum(conv(xh, wh)).backward();
    EXPECT_EQ(xh.grad().dtype(), t);
    auto grad_bound = [&](const Tensor& magnitude_sum, const Tensor& want) {
      return mul(add(mul(magnitude_sum, eps / 2 + acc), mul(abs(want), eps / 2)), 1 + eps / 2);
    };
    EXPECT_TRUE(test::within(xh.grad(), xf.grad(), grad_bound(grad_x_magnitude, xf.grad())));
    EXPECT_TRUE(test::within(wh.grad(), wf.grad(), grad_bound(grad_w_magnitude, wf.grad())));
  }
}

TEST(Conv2d, Errors) {
  Tensor x = u32({1, 3, 5, 5}, 1);
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { conv2d(x, u32({4, 2, 3, 3}, 2)); },
                                            {"conv2d", "weight.size(1) * groups = 2 * 1 = 2", "got 3 channels"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] { conv2d(u32({1, 4, 5, 5}, 1), u32({3, 2, 3, 3}, 2), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2); },
      {"conv2d", "out_channels divisible by groups=2", "got out_channels 3"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { conv2d(u32({1, 1, 2, 2}, 1), u32({1, 1, 3, 3}, 2)); },
                                            {"conv2d", "at least the dilated kernel size 3x3", "got padded input 2x2"}));
  // a dilated kernel exactly as large as the input still gives one pixel
  EXPECT_EQ(conv2d(u32({1, 1, 4, 4}, 1), u32({1, 1, 2, 2}, 2), Tensor(), {1, 1}, {0, 0}, {3, 3}).shape(),
            (Shape{1, 1, 1, 1}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { conv2d(x, u32({4, 3, 3}, 2)); },
                                            {"conv2d", "weight with 4 dims", "got shape [4, 3, 3]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { conv2d(x, u32({4, 3, 3, 3}, 2), u32({3}, 3)); },
                                            {"conv2d", "bias of shape [4]", "got shape [3]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { conv2d(u32({2, 3}, 1), u32({4, 3, 3, 3}, 2)); },
                                            {"conv2d", "3 or 4 dims", "got shape [2, 3]"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { conv2d(x, test::uniform({4, 3, 3, 3}, 2)); },
                                            {"conv2d", "weight of the input's dtype float32", "got float64"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { conv2d(x.to(kInt64), u32({4, 3, 3, 3}, 2).to(kInt64)); },
                                            {"conv2d", "floating-point", "got int64"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { conv2d(x, u32({4, 3, 3, 3}, 2), Tensor(), {0, 1}); },
                                            {"conv2d", "stride >= 1", "got (0, 1)"}));
}
