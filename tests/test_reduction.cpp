// Reductions over all dims or a list of dims, keepdim, dtypes, gradients, against PyTorch.
#include <cmath>

#include "support/check.h"

using namespace anvil;

TEST(Reduction, ForwardValues) {
  Tensor a = tensor(std::vector<float>{1, 5, 3, 4, 2, 6}, {2, 3});
  EXPECT_FLOAT_EQ(sum(a).item<float>(), 21.f);
  EXPECT_EQ(sum(a, {0}).to_vector<float>(), (std::vector<float>{5, 7, 9}));
  EXPECT_EQ(sum(a, {1}, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(mean(a, {1}).to_vector<float>(), (std::vector<float>{3, 4}));
  EXPECT_FLOAT_EQ(max(a).item<float>(), 6.f);
  EXPECT_FLOAT_EQ(min(a).item<float>(), 1.f);
  auto mx = max(a, 1);
  EXPECT_EQ(mx.values.to_vector<float>(), (std::vector<float>{5, 6}));
  EXPECT_EQ(mx.indices.to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(argmin(a, 0).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(argmax(a).item<int64_t>(), 5);
  EXPECT_EQ(amax(a, {0, 1}, true).shape(), (Shape{1, 1}));
  // var with and without Bessel's correction: rows {1,5,3} and {4,2,6}.
  EXPECT_EQ(var(a, {1}).to_vector<float>(), (std::vector<float>{4, 4}));
  EXPECT_EQ(var(a, {1}, 0).to_vector<float>(), (std::vector<float>{8.f / 3, 8.f / 3}));
  EXPECT_FLOAT_EQ(std_dev(a, {1}).to_vector<float>()[0], 2.f);
  // Integer and bool sums are int64; ties pick the first index.
  EXPECT_EQ(sum(tensor(std::vector<int32_t>{1, 2, 3})).dtype(), kInt64);
  EXPECT_EQ(sum(tensor(std::vector<bool>{true, true, false})).item<int64_t>(), 2);
  EXPECT_EQ(argmax(tensor(std::vector<float>{1, 3, 3})).item<int64_t>(), 1);
  // Empty reductions: sum is 0, mean NaN, max refuses.
  EXPECT_FLOAT_EQ(sum(zeros({0, 3})).item<float>(), 0.f);
  EXPECT_TRUE(std::isnan(mean(zeros({0})).item<float>()));
  EXPECT_TRUE(test::throws_with<ValueError>([] { max(zeros({0})); }, {"max", "non-empty"}));
}

TEST(Reduction, GradientsByFiniteDifferences) {
  Tensor x = test::uniform({3, 4, 2}, 11).requires_grad_();
  EXPECT_TRUE(test::gradcheck([](auto& in) { return sum(in[0], {0, 2}); }, {x}));
  EXPECT_TRUE(test::gradcheck([](auto& in) { return mean(in[0], {1}, true); }, {x}));
  EXPECT_TRUE(test::gradcheck([](auto& in) { return var(in[0], {0, 1}); }, {x}));
  EXPECT_TRUE(test::gradcheck([](auto& in) { return std_dev(in[0], {2}, 0); }, {x}));
  EXPECT_TRUE(test::gradcheck([](auto& in) { return max(in[0], 1).values; }, {x}));
  EXPECT_TRUE(test::gradcheck([](auto& in) { return amin(in[0], {0, 2}); }, {x}));
  EXPECT_TRUE(test::gradcheck([](auto& in) { return max(in[0]); }, {x}));
}

TEST(Reduction, MatchesTorch) {
  for (auto shape : {Shape{5}, Shape{4, 6}, Shape{2, 3, 5}}) {
    Tensor a = test::uniform(shape, 3, -2, 2, kFloat32);
    EXPECT_TRUE(test::matches_torch("a.sum()", {a}, [](auto& in) { return sum(in[0]); }));
    EXPECT_TRUE(test::matches_torch("a.mean(-1, keepdim=True)", {a}, [](auto& in) { return mean(in[0], {-1}, true); }));
    EXPECT_TRUE(test::matches_torch("a.var(0)", {a}, [](auto& in) { return var(in[0], {0}); }));
    EXPECT_TRUE(test::matches_torch("a.std(-1, correction=0)", {a}, [](auto& in) { return std_dev(in[0], {-1}, 0); }));
    EXPECT_TRUE(test::matches_torch("a.amax(-1)", {a}, [](auto& in) { return amax(in[0], {-1}); }));
    EXPECT_TRUE(test::matches_torch("a.max(0)[0]", {a}, [](auto& in) { return max(in[0], 0).values; }));
    EXPECT_TRUE(test::matches_torch("a.min(-1)[1]", {a}, [](auto& in) { return min(in[0], -1).indices; }));
    EXPECT_TRUE(test::matches_torch("a.argmax()", {a}, [](auto& in) { return argmax(in[0]); }));
  }
  // Non-contiguous input and several dims at once.
  Tensor t = test::uniform({4, 3, 5}, 4, -1, 1, kFloat32).permute({2, 0, 1});
  EXPECT_TRUE(test::matches_torch("a.sum((0, 2))", {t}, [](auto& in) { return sum(in[0], {0, 2}); }));
  EXPECT_TRUE(test::matches_torch("a.mean((1, 2), keepdim=True)", {t}, [](auto& in) { return mean(in[0], {1, 2}, true); }));
  // Ties share the gradient of a full max evenly, as in torch.
  Tensor tie = tensor(std::vector<float>{1, 3, 3, 2});
  EXPECT_TRUE(test::matches_torch("a.max()", {tie}, [](auto& in) { return max(in[0]); }));
}

TEST(Reduction, BadInput) {
  Tensor a = zeros({2, 3});
  EXPECT_TRUE(test::throws_with<IndexError>([&] { sum(a, {2}); }, {"sum", "[-2, 1]", "2"}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { sum(a, {1, -1}); }, {"sum", "twice"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([] { mean(zeros({2}, kInt64)); }, {"mean", "floating", "int64"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([] { var(zeros({2}, kInt32)); }, {"var", "floating", "int32"}));
}
