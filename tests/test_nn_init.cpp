// nn::init and the layers' default initialisation: gains, fans, and the distributions drawn
// (bounds, mean and spread within statistical limits), since anvil's random numbers are its
// own.
#include <cmath>

#include "anvil/nn/nn.h"
#include "support/check.h"

using namespace anvil;

namespace {

struct Stats {
  double mean, std, min, max;
};

Stats stats(const Tensor& t) {
  auto v = t.to_vector<double>();
  double s = 0, s2 = 0, lo = INFINITY, hi = -INFINITY;
  for (double x : v) {
    s += x;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  const double mean = s / double(v.size());
  for (double x : v) s2 += (x - mean) * (x - mean);
  return {mean, std::sqrt(s2 / double(v.size() - 1)), lo, hi};
}

// U(-b, b) over n draws: inside the bounds, reaching close to them, mean within 5 standard
// errors of 0 and standard deviation within 2% of b / sqrt(3).
::testing::AssertionResult is_uniform(const Tensor& t, double b) {
  const Stats s = stats(t);
  const double n = double(t.numel()), sd = b / std::sqrt(3.0);
  if (s.min < -b || s.max > b)
    return ::testing::AssertionFailure()
           << "range [" << s.min << ", " << s.max << "] exceeds +-" << b;
  if (s.min > -0.99 * b || s.max < 0.99 * b)
    return ::testing::AssertionFailure()
           << "range [" << s.min << ", " << s.max << "] does not reach +-" << b;
  if (std::abs(s.mean) > 5 * sd / std::sqrt(n))
    return ::testing::AssertionFailure() << "mean " << s.mean;
  if (std::abs(s.std / sd - 1) > 0.02)
    return ::testing::AssertionFailure() << "std " << s.std << ", expected " << sd;
  return ::testing::AssertionSuccess();
}

// N(mean, sd^2): sample mean within 5 standard errors, std within 2%, and tails present.
::testing::AssertionResult is_normal(const Tensor& t, double mean, double sd) {
  const Stats s = stats(t);
  const double n = double(t.numel());
  if (std::abs(s.mean - mean) > 5 * sd / std::sqrt(n))
    return ::testing::AssertionFailure() << "mean " << s.mean << ", expected " << mean;
  if (std::abs(s.std / sd - 1) > 0.02)
    return ::testing::AssertionFailure() << "std " << s.std << ", expected " << sd;
  if (s.max - mean < 3 * sd || mean - s.min < 3 * sd)
    return ::testing::AssertionFailure() << "no tails: [" << s.min << ", " << s.max << "]";
  return ::testing::AssertionSuccess();
}

}  // namespace

TEST(NnInit, CalculateGain) {
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("linear"), 1);
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("conv2d"), 1);
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("sigmoid"), 1);
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("tanh"), 5.0 / 3);
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("relu"), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("leaky_relu"), std::sqrt(2.0 / (1 + 1e-4)));
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("leaky_relu", std::sqrt(5.0)), std::sqrt(1.0 / 3));
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("selu"), 0.75);
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::init::calculate_gain("softplus"); },
                                            {"calculate_gain", "\"softplus\""}));
}

TEST(NnInit, FanInAndFanOut) {
  EXPECT_EQ(nn::init::calculate_fan_in_and_fan_out(empty({8, 3, 5, 2})),
            (std::pair<int64_t, int64_t>{30, 80}));
  EXPECT_EQ(nn::init::calculate_fan_in_and_fan_out(empty({4, 6})),
            (std::pair<int64_t, int64_t>{6, 4}));
  EXPECT_TRUE(
      test::throws_with<ValueError>([] { nn::init::calculate_fan_in_and_fan_out(empty({4})); },
                                    {"calculate_fan_in_and_fan_out", "at least 2 dims", "[4]"}));
}

TEST(NnInit, Kaiming) {
  manual_seed(0);
  Tensor w = empty({256, 128, 2, 2});  // fan_in 512, fan_out 1024
  nn::init::kaiming_uniform_(w);       // leaky_relu, a = 0: gain sqrt(2)
  EXPECT_TRUE(is_uniform(w, std::sqrt(2.0) * std::sqrt(3.0 / 512)));
  nn::init::kaiming_uniform_(w, 0, "fan_out", "relu");
  EXPECT_TRUE(is_uniform(w, std::sqrt(2.0) * std::sqrt(3.0 / 1024)));
  nn::init::kaiming_uniform_(w, std::sqrt(5.0));  // torch's Linear/Conv default
  EXPECT_TRUE(is_uniform(w, 1 / std::sqrt(512.0)));
  nn::init::kaiming_normal_(w);
  EXPECT_TRUE(is_normal(w, 0, std::sqrt(2.0 / 512)));
  nn::init::kaiming_normal_(w, 0, "fan_out", "tanh");
  EXPECT_TRUE(is_normal(w, 0, 5.0 / 3 / std::sqrt(1024.0)));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { nn::init::kaiming_uniform_(w, 0, "fan_avg"); },
      {"kaiming_uniform_", "\"fan_in\" or \"fan_out\"", "\"fan_avg\""}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [] {
        nn::init::kaiming_normal_(zeros({3, 3}, kInt64));
      },
      {"kaiming_normal_", "floating-point", "int64"}));
}

TEST(NnInit, Xavier) {
  manual_seed(1);
  Tensor w = empty({300, 500});
  nn::init::xavier_uniform_(w);
  EXPECT_TRUE(is_uniform(w, std::sqrt(6.0 / 800)));
  nn::init::xavier_uniform_(w, 2.0);
  EXPECT_TRUE(is_uniform(w, 2 * std::sqrt(6.0 / 800)));
  nn::init::xavier_normal_(w, 0.5);
  EXPECT_TRUE(is_normal(w, 0, 0.5 * std::sqrt(2.0 / 800)));
  Tensor d = empty({300, 500}, kFloat64);
  nn::init::xavier_normal_(d);
  EXPECT_TRUE(is_normal(d, 0, std::sqrt(2.0 / 800)));
}

TEST(NnInit, SimpleFills) {
  manual_seed(2);
  Tensor w = empty({400, 400}).requires_grad_();  // a parameter: filled under NoGradGuard
  nn::init::uniform_(w, -3, 3);
  EXPECT_TRUE(is_uniform(w, 3));
  nn::init::uniform_(w, 1, 2);
  EXPECT_TRUE(is_uniform(sub(w, 1.5), 0.5));
  nn::init::normal_(w, 2, 0.5);
  EXPECT_TRUE(is_normal(w, 2, 0.5));
  EXPECT_TRUE(w.requires_grad());
  EXPECT_TRUE(w.is_leaf());
  nn::init::constant_(w, 0.25);
  EXPECT_TRUE(equal(w, full({400, 400}, 0.25)));
  nn::init::zeros_(w);
  EXPECT_TRUE(equal(w, zeros({400, 400})));
  nn::init::ones_(w);
  EXPECT_TRUE(equal(w, ones({400, 400})));
  // Views fill their base.
  nn::init::zeros_(w.select(0, 3));
  EXPECT_EQ(sum(w).item<double>(), 400 * 399);
  EXPECT_TRUE(test::throws_with<ValueError>([&] { nn::init::uniform_(w, 2, 1); },
                                            {"uniform_", "a <= b", "a=2, b=1"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { nn::init::normal_(w, 0, -1); },
                                            {"normal_", "std >= 0", "-1"}));
}

TEST(NnInit, SeedMakesInitReproducible) {
  manual_seed(42);
  nn::Linear a(20, 10);
  manual_seed(42);
  nn::Linear b(20, 10);
  nn::Linear c(20, 10);
  EXPECT_TRUE(equal(a.weight, b.weight));
  EXPECT_TRUE(equal(a.bias, b.bias));
  EXPECT_FALSE(equal(b.weight, c.weight));
}

TEST(NnInit, LayerDefaultsAsTorch) {
  manual_seed(3);
  nn::Linear fc(400, 300);  // U(-1/sqrt(400), 1/sqrt(400)) for weight and bias
  EXPECT_TRUE(is_uniform(fc.weight, 1 / std::sqrt(400.0)));
  const Stats b = stats(fc.bias);
  EXPECT_LE(b.max, 0.05);
  EXPECT_GE(b.min, -0.05);
  EXPECT_GT(b.max - b.min, 0.08);  // 300 draws spread over most of [-0.05, 0.05]

  nn::Conv2d conv(64, 128, 3, 1, 0, 1, 2);  // fan_in = 64 / 2 * 9 = 288
  EXPECT_TRUE(is_uniform(conv.weight, 1 / std::sqrt(288.0)));
  const Stats cb = stats(conv.bias);
  EXPECT_LE(cb.max, 1 / std::sqrt(288.0));
  EXPECT_GE(cb.min, -1 / std::sqrt(288.0));
  EXPECT_GT(cb.max - cb.min, 1.5 / std::sqrt(288.0));

  nn::Embedding emb(1000, 64, 7);
  EXPECT_TRUE(is_normal(emb.weight, 0, 1));
  EXPECT_TRUE(equal(emb.weight.select(0, 7), zeros({64})));
  EXPECT_TRUE(emb.weight.requires_grad());

  nn::BatchNorm1d bn(16);
  EXPECT_TRUE(equal(bn.weight, ones({16})));
  EXPECT_TRUE(equal(bn.bias, zeros({16})));
}
