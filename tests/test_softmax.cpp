// softmax and log_softmax.
#include <cmath>

#include "support/check.h"

using namespace anvil;

TEST(Softmax, Values) {
  Tensor x = tensor(std::vector<double>{1, 2, 3, 0, 0, 0}, {2, 3});
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  Tensor want = tensor(std::vector<double>{std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z,
                                           1.0 / 3, 1.0 / 3, 1.0 / 3},
                       {2, 3});
  EXPECT_TRUE(test::all_close(softmax(x, 1), want, 1e-12, 1e-14));
  EXPECT_TRUE(test::all_close(softmax(x, -1), want, 1e-12, 1e-14));
  EXPECT_TRUE(test::all_close(log_softmax(x, 1), log(want), 1e-12, 1e-14));
  // Along dim 0 each column is a pair: softmax(1, 0) = (e/(e+1), 1/(e+1)), etc.
  Tensor s0 = softmax(x, 0);
  auto v = s0.to_vector<double>();
  EXPECT_NEAR(v[0], std::exp(1.0) / (std::exp(1.0) + 1), 1e-12);
  EXPECT_NEAR(v[3], 1 / (std::exp(1.0) + 1), 1e-12);
  EXPECT_NEAR(v[2], std::exp(3.0) / (std::exp(3.0) + 1), 1e-12);
  // A 0-dim input is a one-element row.
  EXPECT_DOUBLE_EQ(softmax(scalar_tensor(5.0, kFloat64), 0).item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(log_softmax(scalar_tensor(5.0, kFloat64), -1).item<double>(), 0.0);
  EXPECT_EQ(softmax(zeros({0, 3}), 1).shape(), (Shape{0, 3}));
}

TEST(Softmax, ExtremeValues) {
  Tensor x = tensor(std::vector<float>{1000, -1000, 0, 1000, 1000, -1000}, {2, 3});
  Tensor s = softmax(x, 1), l = log_softmax(x, 1);
  EXPECT_TRUE(test::all_close(s, tensor(std::vector<float>{1, 0, 0, 0.5, 0.5, 0}, {2, 3})));
  EXPECT_TRUE(test::all_close(l, tensor(std::vector<float>{0, -2000, -1000, -std::log(2.0f),
                                                           -std::log(2.0f), -2000 - std::log(2.0f)},
                                        {2, 3})));
  // Gradients stay finite too.
  Tensor xl = x.detach().requires_grad_();
  sum(mul(log_softmax(xl, 1), tensor(std::vector<float>{1, 0, 0, 0, 1, 0}, {2, 3}))).backward();
  EXPECT_TRUE(
      test::all_close(xl.grad(), tensor(std::vector<float>{0, 0, 0, -0.5, 0.5, 0}, {2, 3})));
}

TEST(Softmax, Gradcheck) {
  for (int64_t dim : {0, 1, -1}) {
    Tensor x = test::uniform({2, 3, 4}, uint64_t(10 + dim), -2, 2).requires_grad_();
    EXPECT_TRUE(test::gradcheck([dim](auto& a) { return softmax(a[0], dim); }, {x})) << dim;
    EXPECT_TRUE(test::gradcheck([dim](auto& a) { return log_softmax(a[0], dim); }, {x})) << dim;
  }
}

TEST(Softmax, MatchesTorch) {
  struct Case {
    Tensor x;
    int64_t dim;
  };
  std::vector<Case> cases = {
      {test::uniform({4, 5}, 1, -3, 3, kFloat32), 1},
      {test::uniform({4, 5}, 2, -3, 3, kFloat32), 0},
      {test::uniform({3, 4, 5}, 3, -3, 3, kFloat32), 1},
      {test::uniform({3, 4, 5}, 4, -3, 3, kFloat32), -1},
      {test::uniform({7}, 5, -3, 3, kFloat32), 0},
      {test::uniform({5, 4}, 6, -3, 3, kFloat32).t(), 1},                   // transposed
      {test::uniform({6, 10}, 7, -3, 3, kFloat32).slice(1, 0, 10, 3), -1},  // strided slice
      {test::uniform({2, 3, 4, 5}, 8, -3, 3, kFloat32).permute({0, 3, 1, 2}), 2},
      {test::uniform({300, 200}, 9, -3, 3, kFloat32), 1},  // large enough to run on threads
      {test::uniform({300, 200}, 10, -3, 3, kFloat32), 0},
  };
  for (auto& c : cases) {
    const std::string d = std::to_string(c.dim);
    int64_t dim = c.dim;
    EXPECT_TRUE(test::matches_torch("torch.softmax(a, " + d + ")", {c.x},
                                    [dim](auto& a) { return softmax(a[0], dim); }))
        << to_string(c.x.shape()) << " dim " << dim;
    EXPECT_TRUE(test::matches_torch("torch.log_softmax(a, " + d + ")", {c.x},
                                    [dim](auto& a) { return log_softmax(a[0], dim); }))
        << to_string(c.x.shape()) << " dim " << dim;
  }
  // bfloat16 inputs compute in float and round once; torch does the same.
  EXPECT_TRUE(test::matches_torch("torch.softmax(a, 1)",
                                  {test::uniform({3, 6}, 9, -3, 3, kBFloat16)},
                                  [](auto& a) { return softmax(a[0], 1); }, {1e-2, 1e-2}));
}

TEST(Softmax, Errors) {
  EXPECT_TRUE(test::throws_with<IndexError>(
      [] {
        softmax(zeros({2, 3}), 2);
      },
      {"softmax", "[-2, 1]", "2"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [] {
        log_softmax(zeros({2, 3}), -3);
      },
      {"log_softmax", "[-2, 1]", "-3"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [] {
        softmax(zeros({2, 3}, kInt64), 1);
      },
      {"softmax", "floating-point", "int64"}));
}
