// dropout: reproducible masks, the drop rate, exact scaling, gradients and bad input.
#include <cmath>

#include "support/check.h"

using namespace anvil;

namespace {
int64_t count_zeros(const Tensor& t) { return sum(eq(t, 0.0)).item<int64_t>(); }
}  // namespace

TEST(Dropout, SameSeedSameMask) {
  Tensor x = ones({4096});
  Generator g1(42), g2(42), g3(43);
  Tensor a = dropout(x, 0.3, true, &g1), b = dropout(x, 0.3, true, &g2);
  EXPECT_TRUE(equal(a, b));
  EXPECT_FALSE(equal(a, dropout(x, 0.3, true, &g3)));
  // The generator advances: the next call draws a fresh mask.
  EXPECT_FALSE(equal(a, dropout(x, 0.3, true, &g1)));
}

TEST(Dropout, MaskFollowsPhiloxDraws) {
  // Element i is kept when the i-th float32 uniform of the generator is below 1 - p, whatever
  // the input's dtype: the scheme a CUDA kernel reproduces.
  for (DType dt : {kFloat32, kFloat64, kFloat16}) {
    Generator g(7), h(7);
    Tensor y = dropout(ones({1000}, dt), 0.25, true, &g);
    Tensor u = rand({1000}, kFloat32, &h);
    EXPECT_TRUE(equal(ne(y, 0.0), lt(u, 0.75))) << dtype_name(dt);
    EXPECT_EQ(g.offset(), h.offset());
  }
}

TEST(Dropout, FractionOfZerosNearP) {
  const int64_t n = 1 << 20;
  Tensor x = ones({n});
  for (double p : {0.1, 0.5, 0.8}) {
    Generator g(123);
    double frac = double(count_zeros(dropout(x, p, true, &g))) / double(n);
    double sigma = std::sqrt(p * (1 - p) / double(n));
    EXPECT_NEAR(frac, p, 5 * sigma) << "p = " << p;
  }
}

TEST(Dropout, SurvivorsScaledExactly) {
  const double p = 0.3;
  Tensor x = test::uniform({50, 40}, 3, 0.5, 1.5, kFloat32);
  Generator g(9);
  Tensor y = dropout(x, p, true, &g);
  ASSERT_EQ(y.dtype(), kFloat32);
  ASSERT_EQ(y.shape(), x.shape());
  auto xs = x.to_vector<float>(), ys = y.to_vector<float>();
  const float scale = float(1.0 / (1.0 - p));
  int64_t kept = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (ys[i] == 0.0f) continue;
    ++kept;
    ASSERT_EQ(ys[i], xs[i] * scale) << "element " << i;
  }
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, int64_t(xs.size()));
}

TEST(Dropout, NonContiguousAndHalfInputs) {
  Tensor x = test::uniform({40, 30}, 4, 0.5, 1.5, kFloat32).t();
  Generator g(1), h(1);
  Tensor y = dropout(x, 0.5, true, &g);
  Tensor ref = dropout(x.contiguous(), 0.5, true, &h);
  EXPECT_TRUE(equal(y, ref));
  Tensor xh = ones({256}, kFloat16);
  Generator k(2);
  Tensor yh = dropout(xh, 0.5, true, &k);
  EXPECT_EQ(yh.dtype(), kFloat16);
  EXPECT_TRUE(equal(logical_or(eq(yh, 0.0), eq(yh, 2.0)), ones({256}, kBool)));
}

TEST(Dropout, GradientIsMaskOverKeep) {
  const double p = 0.4;
  Tensor x = test::uniform({30, 20}, 5, 0.5, 1.5).requires_grad_();
  Generator g(11);
  Tensor y = dropout(x, p, true, &g);
  Tensor up = test::uniform({30, 20}, 6);
  y.backward(up);
  Tensor mask = ne(y.detach(), 0.0).to(kFloat64);  // x is never 0, so y == 0 marks a drop
  EXPECT_TRUE(test::all_close(x.grad(), mul(mul(up, mask), 1.0 / (1.0 - p)), 0, 0));
  // As a function with a fixed generator, dropout is linear in x.
  Tensor z = test::uniform({4, 5}, 7).requires_grad_();
  EXPECT_TRUE(test::gradcheck(
      [](auto& v) {
        Generator fixed(3);
        return dropout(v[0], 0.4, true, &fixed);
      },
      {z}));
}

TEST(Dropout, IdentityAndExtremes) {
  Tensor x = test::uniform({3, 4}, 8, -1, 1, kFloat32);
  EXPECT_TRUE(dropout(x, 0.5, false).is_same(x));
  EXPECT_TRUE(dropout(x, 0.0, true).is_same(x));
  Tensor z = dropout(x, 1.0, true);
  EXPECT_TRUE(test::all_close(z, zeros({3, 4}), 0, 0));
  Tensor w = test::uniform({3, 4}, 9).requires_grad_();
  sum(dropout(w, 1.0, true)).backward();
  EXPECT_TRUE(test::all_close(w.grad(), zeros({3, 4}, kFloat64), 0, 0));
}

TEST(Dropout, BadInput) {
  Tensor x = ones({3});
  EXPECT_TRUE(
      test::throws_with<ValueError>([&] { dropout(x, 1.5); }, {"dropout", "[0, 1]", "1.5"}));
  EXPECT_TRUE(
      test::throws_with<ValueError>([&] { dropout(x, -0.1); }, {"dropout", "[0, 1]", "-0.1"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { dropout(x, std::nan("")); },
                                            {"dropout", "[0, 1]", "nan"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { dropout(ones({3}, kInt64), 0.5); },
                                            {"dropout", "floating-point", "int64"}));
}
