// Activations (softmax and log_softmax are tested with their own family).
#include <cmath>

#include "support/check.h"

using namespace anvil;

namespace {
Tensor f64(const std::vector<double>& v, const Shape& s = {}) { return tensor(v, s); }
Tensor r32(const Shape& s, uint64_t seed, double lo = -3, double hi = 3) {
  return test::uniform(s, seed, lo, hi, kFloat32);
}
// Float32 inputs of several layouts: contiguous, transposed, strided slice, 0-dim, large
// enough to run on several threads.
std::vector<Tensor> layouts(uint64_t seed) {
  return {r32({3, 4, 5}, seed), r32({5, 4}, seed + 1).t(), r32({6, 8}, seed + 2).slice(1, 1, 8, 2),
          r32({}, seed + 3), r32({300, 200}, seed + 4)};
}

struct Case {
  const char* expr;
  Tensor (*fn)(const Tensor&);
};
const Case kCases[] = {
    {"torch.relu(a)", [](const Tensor& t) { return relu(t); }},
    {"F.leaky_relu(a)", [](const Tensor& t) { return leaky_relu(t); }},
    {"F.leaky_relu(a, 0.2)", [](const Tensor& t) { return leaky_relu(t, 0.2); }},
    {"F.elu(a)", [](const Tensor& t) { return elu(t); }},
    {"F.elu(a, 0.5)", [](const Tensor& t) { return elu(t, 0.5); }},
    {"torch.sigmoid(a)", [](const Tensor& t) { return sigmoid(t); }},
    {"torch.tanh(a)", [](const Tensor& t) { return anvil::tanh(t); }},
    {"F.silu(a)", [](const Tensor& t) { return silu(t); }},
    {"F.gelu(a)", [](const Tensor& t) { return gelu(t); }},
    {"F.gelu(a, approximate='tanh')", [](const Tensor& t) { return gelu(t, "tanh"); }},
};
}  // namespace

TEST(Activation, Values) {
  Tensor x = f64({-2, -0.5, 0, 1, 3});
  EXPECT_TRUE(test::all_close(relu(x), f64({0, 0, 0, 1, 3})));
  EXPECT_TRUE(test::all_close(leaky_relu(x, 0.1), f64({-0.2, -0.05, 0, 1, 3})));
  EXPECT_TRUE(test::all_close(leaky_relu(x), f64({-0.02, -0.005, 0, 1, 3})));
  EXPECT_TRUE(test::all_close(elu(x), f64({std::exp(-2.0) - 1, std::exp(-0.5) - 1, 0, 1, 3})));
  EXPECT_TRUE(test::all_close(elu(x, 2.0),
                              f64({2 * (std::exp(-2.0) - 1), 2 * (std::exp(-0.5) - 1), 0, 1, 3})));
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  EXPECT_TRUE(test::all_close(sigmoid(x), f64({sig(-2), sig(-0.5), 0.5, sig(1), sig(3)})));
  EXPECT_TRUE(test::all_close(
      anvil::tanh(x), f64({std::tanh(-2.0), std::tanh(-0.5), 0, std::tanh(1.0), std::tanh(3.0)})));
  EXPECT_TRUE(
      test::all_close(silu(x), f64({-2 * sig(-2), -0.5 * sig(-0.5), 0, sig(1), 3 * sig(3)})));
  // gelu(x) = x Phi(x); the tanh form approximates Phi.
  Tensor g = gelu(f64({-1, 0, 1, 2}));
  EXPECT_TRUE(test::all_close(
      g, f64({-0.15865525393145707, 0, 0.8413447460685429, 1.9544997361036416}), 1e-12, 1e-12));
  Tensor gt = gelu(f64({-1, 0, 1}), "tanh");
  EXPECT_TRUE(
      test::all_close(gt, f64({-0.15880800939172324, 0, 0.8411919906082768}), 1e-12, 1e-12));
  // NaN propagates through relu, as torch.relu.
  EXPECT_TRUE(std::isnan(relu(f64({NAN})).item<double>()));
  // Extremes saturate instead of overflowing.
  EXPECT_TRUE(test::all_close(sigmoid(f64({-1000, 1000})), f64({0, 1})));
  EXPECT_TRUE(test::all_close(silu(f64({-1000, 1000})), f64({0, 1000})));
}

TEST(Activation, Dtypes) {
  // relu keeps an integer dtype; sigmoid and tanh of integers compute in float32 (as torch).
  Tensor r = relu(tensor(std::vector<int64_t>{-2, 0, 5}));
  EXPECT_EQ(r.dtype(), kInt64);
  EXPECT_EQ(r.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 5}));
  Tensor s = sigmoid(tensor(std::vector<int32_t>{0, 1}));
  EXPECT_EQ(s.dtype(), kFloat32);
  EXPECT_TRUE(
      test::all_close(s, tensor(std::vector<float>{0.5f, float(1 / (1 + std::exp(-1.0)))})));
  EXPECT_EQ(anvil::tanh(tensor(std::vector<int64_t>{1})).dtype(), kFloat32);
  for (DType t : {kFloat16, kBFloat16}) {
    Tensor x = test::uniform({4, 5}, 3, -3, 3, t);
    for (const auto& c : kCases) {
      auto fn = c.fn;
      EXPECT_EQ(fn(x).dtype(), t) << c.expr;
      // One rounding to 16 bits either side of float32 results that agree to a few float32
      // units (torch also computes these in float32): at most one 16-bit unit apart, eps(t)
      // relative, or 2^-24 (float16's smallest step) near zero.
      const double eps = test::epsilon(t);
      EXPECT_TRUE(test::matches_torch(c.expr, {x}, [fn](auto& v) { return fn(v[0]); },
                                      {eps, std::ldexp(1.0, -24)}))
          << c.expr << " " << dtype_name(t);
    }
  }
}

TEST(Activation, Gradcheck) {
  for (const auto& c : kCases) {
    auto fn = c.fn;
    Tensor x = test::uniform({3, 4}, 21, -3, 3).requires_grad_();
    EXPECT_TRUE(test::gradcheck([fn](auto& v) { return fn(v[0]); }, {x})) << c.expr;
    // A non-contiguous input, and the gradient of a composition.
    Tensor y = test::uniform({4, 3}, 22, -3, 3).requires_grad_();
    EXPECT_TRUE(test::gradcheck([fn](auto& v) { return mul(fn(v[0].t()), fn(v[0].t())); }, {y}))
        << c.expr;
  }
}

TEST(Activation, MatchesTorch) {
  uint64_t seed = 900;
  for (const auto& c : kCases) {
    auto fn = c.fn;
    for (const Tensor& x : layouts(seed += 10))
      EXPECT_TRUE(test::matches_torch(c.expr, {x}, [fn](auto& v) { return fn(v[0]); }))
          << c.expr << " shape " << to_string(x.shape());
  }
}

TEST(Activation, GradientsAtKinks) {
  // At 0: relu passes 0, leaky_relu the slope, elu alpha (torch's choices).
  Tensor x = tensor(std::vector<float>{-1, 0, 1});
  for (const auto& c : kCases) {
    auto fn = c.fn;
    EXPECT_TRUE(test::matches_torch(c.expr, {x}, [fn](auto& v) { return fn(v[0]); })) << c.expr;
  }
  Tensor y = f64({0}).requires_grad_();
  relu(y).backward();
  EXPECT_EQ(y.grad().item<double>(), 0.0);
  Tensor z = f64({0}).requires_grad_();
  elu(z, 0.7).backward();
  EXPECT_NEAR(z.grad().item<double>(), 0.7, 1e-15);
}

TEST(Activation, Errors) {
  Tensor i = tensor(std::vector<int64_t>{1, 2});
  EXPECT_TRUE(test::throws_with<ValueError>([] { gelu(f64({1}), "fast"); },
                                            {"gelu", "\"none\" or \"tanh\"", "\"fast\""}));
  EXPECT_TRUE(test::throws_with<DTypeError>([i] { leaky_relu(i); },
                                            {"leaky_relu", "floating-point", "int64"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([i] { elu(i); }, {"elu", "floating-point", "int64"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([i] { silu(i); }, {"silu", "floating-point", "int64"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([i] { gelu(i); }, {"gelu", "floating-point", "int64"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([] { relu(tensor(std::vector<bool>{true})); },
                                            {"relu", "numeric", "bool"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { sigmoid(Tensor()); },
                                            {"sigmoid", "defined tensor", "undefined"}));
}
