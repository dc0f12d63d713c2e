// max_pool2d, avg_pool2d, adaptive_avg_pool2d: closed-form values, output sizes, gradients,
// agreement with PyTorch, errors.
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

}  // namespace

TEST(MaxPool2d, ForwardBackwardClosedForm) {
  Tensor x = iota({1, 1, 4, 4}).requires_grad_();
  Tensor y = max_pool2d(x, {2, 2});
  EXPECT_TRUE(test::all_close(y, t64({6, 8, 14, 16}, {1, 1, 2, 2})));
  sum(mul(y, t64({1, 2, 3, 4}, {1, 1, 2, 2}))).backward();  // each gradient lands on its argmax
  EXPECT_TRUE(test::all_close(
      x.grad(), t64({0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4}, {1, 1, 4, 4})));
  // padding is -inf: each window of the padded 3x3 kernel keeps its top-left real pixel
  Tensor n = neg(iota({1, 3, 3}));  // unbatched, all negative
  EXPECT_TRUE(test::all_close(max_pool2d(n, {3, 3}, {2, 2}, {1, 1}), t64({-1, -2, -4, -5}, {1, 2, 2})));
  // dilation 2 picks the corners of the 3x3 input
  EXPECT_TRUE(test::all_close(max_pool2d(iota({1, 1, 3, 3}), {2, 2}, {1, 1}, {0, 0}, {2, 2}),
                              t64({9}, {1, 1, 1, 1})));
  // overlapping windows send both gradients to a shared argmax
  Tensor z = t64({0, 5, 0, 0, 0, 0}, {1, 1, 2, 3}).requires_grad_();
  sum(max_pool2d(z, {2, 2}, {1, 1})).backward();
  EXPECT_TRUE(test::all_close(z.grad(), t64({0, 2, 0, 0, 0, 0}, {1, 1, 2, 3})));
}

TEST(MaxPool2d, IntegerInput) {
  Tensor x = iota({1, 1, 4, 4}).to(kInt64);
  Tensor y = max_pool2d(x, {2, 2});
  EXPECT_EQ(y.dtype(), kInt64);
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{6, 8, 14, 16}));
}

TEST(Pool2d, CeilModeOutputSizes) {
  // ceil_mode rounds up: 5 -> 3 windows of 2 with stride 2
  EXPECT_EQ(max_pool2d(u32({1, 1, 5, 5}, 1), {2, 2}, {2, 2}, {0, 0}, {1, 1}, true).shape(), (Shape{1, 1, 3, 3}));
  EXPECT_EQ(max_pool2d(u32({1, 1, 5, 5}, 1), {2, 2}).shape(), (Shape{1, 1, 2, 2}));
  // ... but the last window must start inside the input: 6 with k=2, s=3 gives 2, not 3
  EXPECT_EQ(max_pool2d(u32({1, 1, 6, 6}, 1), {2, 2}, {3, 3}, {0, 0}, {1, 1}, true).shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(avg_pool2d(u32({1, 1, 6, 6}, 1), {2, 2}, {3, 3}, {0, 0}, true).shape(), (Shape{1, 1, 2, 2}));
  // with padding the last window may start in the left padding's reach: 4 + pad 1, k=2, s=2
  EXPECT_EQ(avg_pool2d(u32({1, 1, 4, 4}, 1), {2, 2}, {2, 2}, {1, 1}, true).shape(), (Shape{1, 1, 3, 3}));
}

TEST(AvgPool2d, ClosedFormDivisors) {
  Tensor x = iota({1, 1, 3, 3});
  EXPECT_TRUE(test::all_close(avg_pool2d(x, {2, 2}, {1, 1}), t64({3, 4, 6, 7}, {1, 1, 2, 2})));
  // padding 1, k 2, s 2: corner windows hold 1 real pixel (of 4 with padding counted)
  EXPECT_TRUE(test::all_close(avg_pool2d(x, {2, 2}, {2, 2}, {1, 1}, false, true),
                              t64({1 / 4.0, 5 / 4.0, 11 / 4.0, 28 / 4.0}, {1, 1, 2, 2})));
  EXPECT_TRUE(test::all_close(avg_pool2d(x, {2, 2}, {2, 2}, {1, 1}, false, false),
                              t64({1, 5 / 2.0, 11 / 2.0, 28 / 4.0}, {1, 1, 2, 2})));
  // ceil_mode: the last window hangs off the input and is clipped from the divisor too
  EXPECT_TRUE(test::all_close(avg_pool2d(x, {2, 2}, {2, 2}, {0, 0}, true, true),
                              t64({3, 4.5, 7.5, 9}, {1, 1, 2, 2})));
}

TEST(AdaptiveAvgPool2d, ClosedFormBins) {
  // H = 5 into 3 bins: [0, 2), [1, 4), [3, 5); W = 2 into 1 bin
  Tensor x = iota({1, 5, 2});
  EXPECT_TRUE(test::all_close(adaptive_avg_pool2d(x, {3, 1}), t64({2.5, 5.5, 8.5}, {1, 3, 1})));
  // global average pooling
  EXPECT_TRUE(test::all_close(adaptive_avg_pool2d(iota({2, 1, 2, 2}), {1, 1}), t64({2.5, 6.5}, {2, 1, 1, 1})));
  Tensor g = iota({1, 1, 2, 2}).requires_grad_();
  sum(adaptive_avg_pool2d(g, {3, 3})).backward();  // upsampling: bins overlap
  EXPECT_TRUE(test::all_close(g.grad(), t64({2.25, 2.25, 2.25, 2.25}, {1, 1, 2, 2})));
}

TEST(Pool2d, Gradcheck) {
  Tensor x = test::uniform({2, 2, 5, 5}, 1).requires_grad_();
  auto check = [&](test::Fn f) { EXPECT_TRUE(test::gradcheck(f, {x})); };
  check([](auto& v) { return max_pool2d(v[0], {2, 2}); });
  check([](auto& v) { return max_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}, {1, 1}, true); });
  check([](auto& v) { return max_pool2d(v[0], {2, 3}, {1, 2}, {1, 1}, {2, 1}); });
  check([](auto& v) { return avg_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}, true, false); });
  check([](auto& v) { return avg_pool2d(v[0], {2, 2}, {2, 1}, {1, 0}, true, true); });
  check([](auto& v) { return adaptive_avg_pool2d(v[0], {3, 2}); });
  check([](auto& v) { return adaptive_avg_pool2d(v[0], {7, 6}); });
}

TEST(Pool2d, MatchesTorch) {
  std::vector<Tensor> inputs = {
      u32({2, 3, 7, 6}, 1),
      u32({2, 6, 5, 3}, 2).permute({0, 3, 1, 2}),  // non-contiguous [2, 3, 6, 5]
      u32({3, 9, 8}, 3).slice(1, 1, 9, 1).slice(2, 0, 8, 2),  // unbatched, strided [3, 8, 4]
  };
  for (const Tensor& x : inputs) {
    EXPECT_TRUE(test::matches_torch("F.max_pool2d(a, 2)", {x}, [](auto& v) { return max_pool2d(v[0], {2, 2}); }));
    EXPECT_TRUE(test::matches_torch(
        "F.max_pool2d(a, 3, stride=2, padding=1, dilation=1, ceil_mode=True)", {x},
        [](auto& v) { return max_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}, {1, 1}, true); }));
    EXPECT_TRUE(test::matches_torch(
        "F.max_pool2d(a, (2, 3), stride=(1, 2), padding=(1, 1), dilation=(2, 1))", {x},
        [](auto& v) { return max_pool2d(v[0], {2, 3}, {1, 2}, {1, 1}, {2, 1}); }));
    EXPECT_TRUE(test::matches_torch("F.avg_pool2d(a, 2)", {x}, [](auto& v) { return avg_pool2d(v[0], {2, 2}); }));
    EXPECT_TRUE(test::matches_torch(
        "F.avg_pool2d(a, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=True)", {x},
        [](auto& v) { return avg_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}, true, true); }));
    EXPECT_TRUE(test::matches_torch(
        "F.avg_pool2d(a, (3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True, count_include_pad=False)", {x},
        [](auto& v) { return avg_pool2d(v[0], {3, 2}, {2, 3}, {1, 1}, true, false); }));
    EXPECT_TRUE(test::matches_torch("F.adaptive_avg_pool2d(a, (3, 2))", {x},
                                    [](auto& v) { return adaptive_avg_pool2d(v[0], {3, 2}); }));
    EXPECT_TRUE(test::matches_torch("F.adaptive_avg_pool2d(a, (5, 7))", {x},
                                    [](auto& v) { return adaptive_avg_pool2d(v[0], {5, 7}); }));
  }
  // many planes: the work splits across threads
  Tensor big = u32({8, 16, 32, 32}, 9);
  EXPECT_TRUE(test::matches_torch("F.max_pool2d(a, 3, 2, 1)", {big},
                                  [](auto& v) { return max_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}); }));
  EXPECT_TRUE(test::matches_torch("F.avg_pool2d(a, 2)", {big}, [](auto& v) { return avg_pool2d(v[0], {2, 2}); }));
  EXPECT_TRUE(test::matches_torch("F.adaptive_avg_pool2d(a, 7)", {big},
                                  [](auto& v) { return adaptive_avg_pool2d(v[0], {7, 7}); }));
}

TEST(Pool2d, HalfPrecision) {
  // Max pooling picks values: exact. An average of 16-bit values (each x rounded once, by at
  // most eps/2 |x|, eps = test::epsilon(t)), summed in float32 and rounded once more, is at most
  // eps/2 (avg(|x|) + |ref|) from the float32 average of x; (1 + eps) covers the float32 sums.
  Tensor x = u32({2, 3, 6, 6}, 4);
  auto avg = [](const Tensor& v) { return avg_pool2d(v, {3, 3}, {1, 1}, {1, 1}); };
  auto adaptive = [](const Tensor& v) { return adaptive_avg_pool2d(v, {4, 4}); };
  for (DType t : {kFloat16, kBFloat16}) {
    SCOPED_TRACE(dtype_name(t));
    const double eps = test::epsilon(t);
    Tensor xh = x.to(t);
    EXPECT_TRUE(test::all_close(max_pool2d(xh, {2, 2}), max_pool2d(xh.to(kFloat32), {2, 2}), 0, 0));
    auto bound = [&](auto pool) { return mul(add(pool(abs(x)), abs(pool(x))), eps / 2 * (1 + eps)); };
    EXPECT_TRUE(test::within(avg(xh), avg(x), bound(avg)));
    EXPECT_TRUE(test::within(adaptive(xh), adaptive(x), bound(adaptive)));
    EXPECT_EQ(avg_pool2d(xh, {2, 2}).dtype(), t);
  }
}

TEST(Pool2d, Errors) {
  Tensor x = u32({1, 1, 4, 4}, 1);
  EXPECT_TRUE(test::throws_with<ValueError>([&] { max_pool2d(x, {2, 2}, {2, 2}, {2, 2}); },
                                            {"max_pool2d", "half the kernel size (1, 1)", "got (2, 2)"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { avg_pool2d(x, {3, 3}, {1, 1}, {2, 0}); },
                                            {"avg_pool2d", "half the kernel size (1, 1)", "got (2, 0)"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { max_pool2d(u32({1, 1, 1, 3}, 1), {2, 2}); },
                                            {"max_pool2d", "at least 1x1", "got 0x1"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { avg_pool2d(u32({4, 4}, 1), {2, 2}); },
                                            {"avg_pool2d", "3 or 4 dims", "got shape [4, 4]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { adaptive_avg_pool2d(u32({2, 1, 4, 4, 4}, 1), {2, 2}); },
                                            {"adaptive_avg_pool2d", "3 or 4 dims", "got shape [2, 1, 4, 4, 4]"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { adaptive_avg_pool2d(x, {0, 2}); },
                                            {"adaptive_avg_pool2d", "output_size >= 1", "got (0, 2)"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { max_pool2d(x, {0, 2}); },
                                            {"max_pool2d", "kernel_size >= 1", "got (0, 2)"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { max_pool2d(x, {2, 2}, {1, 1}, {0, 0}, {0, 1}); },
                                            {"max_pool2d", "dilation >= 1", "got (0, 1)"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { avg_pool2d(x.to(kInt64), {2, 2}); },
                                            {"avg_pool2d", "floating-point", "got int64"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { max_pool2d(u32({1, 0, 4, 4}, 1), {2, 2}); },
                                            {"max_pool2d", "non-zero channel and spatial sizes", "got shape [1, 0, 4, 4]"}));
}
