// dropout: reproducible masks, the drop rate, exact scaling, gradients, bit-identity with the
// composition the fused kernels replaced, and bad input.
#include <cmath>

#include "support/check.h"
#include "support/dropout_reference.h"

using namespace anvil;
using test::composed_dropout;
using test::kDropoutDTypes;
using test::same_bits;

namespace {
int64_t count_zeros(const Tensor& t) { return sum(eq(t, 0.0)).item<int64_t>(); }
Tensor awkward_input(const Shape& shape, uint64_t seed, DType dtype) {
  return test::dropout_input(shape, seed, dtype, /*specials=*/true);
}
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

TEST(Dropout, BitIdenticalToTheComposedFormula) {
  for (DType dt : kDropoutDTypes)
    for (double p : {0.1, 0.3, 0.5, 0.9}) {
      Tensor x = awkward_input({1001}, 21, dt);  // not a whole number of Philox blocks
      Generator g(5), h(5);
      EXPECT_TRUE(same_bits(dropout(x, p, true, &g), composed_dropout(x, p, h)))
          << dtype_name(dt) << " p = " << p;
      EXPECT_EQ(g.offset(), h.offset()) << dtype_name(dt);
    }
}

TEST(Dropout, ConsecutiveCallsAdvanceTheGeneratorAsTheComposition) {
  for (DType dt : kDropoutDTypes) {
    Tensor x = awkward_input({37, 29}, 22, dt);
    Generator g(77), h(77);
    Tensor a1 = dropout(x, 0.4, true, &g), a2 = dropout(x, 0.4, true, &g);
    Tensor b1 = composed_dropout(x, 0.4, h), b2 = composed_dropout(x, 0.4, h);
    EXPECT_TRUE(same_bits(a1, b1)) << dtype_name(dt);
    EXPECT_TRUE(same_bits(a2, b2)) << dtype_name(dt);
    EXPECT_FALSE(same_bits(a1, a2)) << dtype_name(dt);
    EXPECT_EQ(g.offset(), h.offset()) << dtype_name(dt);
    EXPECT_EQ(g.offset(), 2u * ((37u * 29u + 3u) / 4u)) << dtype_name(dt);
  }
}

TEST(Dropout, GradientBitIdenticalToTheComposedFormula) {
  for (DType dt : kDropoutDTypes) {
    Tensor x = test::uniform({33, 31}, 23, -2, 2, dt).requires_grad_();
    Tensor xc = x.detach().clone().requires_grad_();
    Tensor up = awkward_input({33, 31}, 24, dt);
    Generator g(8), h(8);
    Tensor y = dropout(x, 0.3, true, &g);
    ASSERT_TRUE(y.grad_fn()) << dtype_name(dt);
    EXPECT_EQ(y.grad_fn()->name(), "DropoutBackward");
    y.backward(up);
    composed_dropout(xc, 0.3, h).backward(up);
    EXPECT_TRUE(same_bits(x.grad(), xc.grad())) << dtype_name(dt);
  }
}

TEST(Dropout, GradientOfAnotherDtypeAndStridesAsTheComposition) {
  // A float64 gradient for a float32 output is multiplied in float64 (as mul promotes) and
  // cast back; a transposed gradient is read through its strides.
  Tensor x = test::uniform({24, 40}, 25, -2, 2, kFloat32).requires_grad_();
  Tensor xc = x.detach().clone().requires_grad_();
  Tensor up = test::uniform({40, 24}, 26, -2, 2).t();
  Generator g(9), h(9);
  dropout(x, 0.3, true, &g).backward(up);
  composed_dropout(xc, 0.3, h).backward(up);
  EXPECT_TRUE(same_bits(x.grad(), xc.grad()));
  EXPECT_EQ(x.grad().dtype(), kFloat32);
}

TEST(Dropout, NonContiguousInputAsTheComposition) {
  for (DType dt : kDropoutDTypes) {
    Tensor x = awkward_input({30, 50}, 27, dt).t();
    ASSERT_FALSE(x.is_contiguous());
    Generator g(10), h(10);
    Tensor y = dropout(x, 0.6, true, &g);
    EXPECT_TRUE(same_bits(y, composed_dropout(x, 0.6, h))) << dtype_name(dt);
    EXPECT_EQ(y.shape(), x.shape());
  }
}

TEST(Dropout, EmptyInputsDrawNothing) {
  for (const Shape& shape : {Shape{0}, Shape{3, 0}}) {
    Generator g(12);
    Tensor x = empty(shape).requires_grad_();
    Tensor y = dropout(x, 0.5, true, &g);
    EXPECT_EQ(y.shape(), shape);
    EXPECT_EQ(g.offset(), 0u);
    y.backward(empty(shape));
    EXPECT_EQ(x.grad().shape(), shape);
  }
}

TEST(Dropout, DroppingEverythingDrawsNothingAndMultipliesByZero) {
  // p == 1 keeps x * 0 (so -0 and NaN as mul gives them) and leaves the generator alone.
  for (DType dt : kDropoutDTypes) {
    Tensor x = awkward_input({50}, 28, dt);
    Generator g(13);
    EXPECT_TRUE(same_bits(dropout(x, 1.0, true, &g), mul(x, zeros({50}, dt)))) << dtype_name(dt);
    EXPECT_EQ(g.offset(), 0u);
  }
}
