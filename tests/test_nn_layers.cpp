// nn layers against torch.nn modules loaded with the same weights: outputs, input and
// parameter gradients, buffers after the step; and their argument errors.
#include <cmath>

#include "anvil/nn/nn.h"
#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;

namespace {

std::string py_dtype(DType t) { return std::string("torch.") + dtype_name(t); }

// Runs `m` on x in anvil and `ctor` (a torch.nn module expression) in torch after loading
// m's state dict into it (strictly, so the keys must match torch's), in training or eval
// mode. Compares the output, the gradients of sum(out * g) w.r.t. x (when floating) and every
// parameter, and every buffer after the forward pass.
::testing::AssertionResult matches_torch_module(nn::Module& m, const std::string& ctor,
                                                const Tensor& x, bool train = true,
                                                double rtol = 1e-5, double atol = 1e-6) {
  m.train(train);
  std::vector<Tensor> inputs{x, Tensor()};
  std::string keys, args;
  DType dt = x.is_floating_point() ? x.dtype() : kFloat32;
  for (auto& [k, v] : m.state_dict()) {
    ANVIL_CHECK(inputs.size() < 26, Error, "matches_torch_module: too many tensors");
    keys += "'" + k + "', ";
    args += std::string(1, char('a' + inputs.size())) + ", ";
    inputs.push_back(v.clone());  // forward changes the buffers in place
    if (v.is_floating_point()) dt = v.dtype();
  }
  // anvil
  Tensor xa = x.clone();
  if (x.is_floating_point()) xa.requires_grad_();
  m.zero_grad();
  Tensor y = m(xa);
  Tensor g = test::uniform(y.shape(), 7, -1, 1, y.dtype());
  inputs[1] = g;
  sum(mul(y, g)).backward();
  std::vector<std::pair<std::string, Tensor>> got{{"output", y}};
  if (x.is_floating_point()) got.emplace_back("input grad", xa.grad());
  std::string pnames, bnames;
  for (auto& [n, p] : m.named_parameters()) {
    got.emplace_back(n + " grad", p.grad());
    pnames += "'" + n + "', ";
  }
  for (auto& [n, b] : m.named_buffers()) {
    got.emplace_back(n, b);
    bnames += "'" + n + "', ";
  }
  // torch
  const std::string code =
      "m = (" + ctor + ").to(" + py_dtype(dt) +
      ")\n"
      "m.load_state_dict(dict(zip([" +
      keys + "], [" + args +
      "])))\n"
      "m.train(" +
      (train ? "True" : "False") +
      ")\n"
      "x = a.clone().requires_grad_(a.is_floating_point())\n"
      "y = m(x)\n"
      "(y * b).sum().backward()\n"
      "P, B = dict(m.named_parameters()), dict(m.named_buffers())\n"
      "out = [y] + ([x.grad] if a.is_floating_point() else []) + [P[n].grad for n in [" +
      pnames + "]] + [B[n] for n in [" + bnames + "]]\n";
  std::vector<Tensor> want;
  try {
    want = test::TorchOracle::get().run_code(code, inputs);
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "torch failed: " << e.what() << "\n" << code;
  }
  if (want.size() != got.size())
    return ::testing::AssertionFailure()
           << "torch gave " << want.size() << " tensors, anvil " << got.size();
  for (size_t i = 0; i < got.size(); ++i) {
    if (!got[i].second.defined())
      return ::testing::AssertionFailure() << got[i].first << " is undefined in anvil";
    if (got[i].second.dtype() != want[i].dtype())
      return ::testing::AssertionFailure()
             << got[i].first << " of " << m.name() << ": dtype " << dtype_name(got[i].second.dtype())
             << " vs torch's " << dtype_name(want[i].dtype());
    auto r = test::all_close(got[i].second, want[i], rtol, atol);
    if (!r) return r << " (" << got[i].first << " of " << m.name() << ")";
  }
  return ::testing::AssertionSuccess();
}

Tensor input(const Shape& s, uint64_t seed) { return test::uniform(s, seed, -2, 2, kFloat32); }

}  // namespace

// ---- Linear ----

TEST(NnLayers, LinearMatchesTorch) {
  manual_seed(1);
  nn::Linear fc(5, 3);
  EXPECT_EQ(fc.weight.shape(), (Shape{3, 5}));
  EXPECT_EQ(fc.bias.shape(), (Shape{3}));
  EXPECT_TRUE(fc.weight.requires_grad());
  EXPECT_TRUE(matches_torch_module(fc, "torch.nn.Linear(5, 3)", input({4, 5}, 1)));
  EXPECT_TRUE(matches_torch_module(fc, "torch.nn.Linear(5, 3)", input({2, 3, 5}, 2)));
  nn::Linear nobias(5, 2, false);
  EXPECT_FALSE(nobias.bias.defined());
  EXPECT_EQ(nobias.parameters().size(), 1u);
  EXPECT_TRUE(matches_torch_module(nobias, "torch.nn.Linear(5, 2, bias=False)", input({4, 5}, 3)));
  nn::Dense dense(3, 4);  // the Keras name
  EXPECT_EQ(dense.name(), "Linear");
  EXPECT_EQ(dense.extra_repr(), "in_features=3, out_features=4, bias=true");
}

TEST(NnLayers, LinearErrors) {
  nn::Linear fc(5, 3);
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        fc(zeros({4, 6}));
      },
      {"Linear::forward", "[..., 5]", "[4, 6]"}));
  EXPECT_TRUE(
      test::throws_with<ValueError>([] { nn::Linear(-1, 3); }, {"Linear", "non-negative", "-1"}));
}

// ---- Conv2d ----

TEST(NnLayers, Conv2dMatchesTorch) {
  manual_seed(2);
  nn::Conv2d c(3, 4, 3);
  EXPECT_EQ(c.weight.shape(), (Shape{4, 3, 3, 3}));
  EXPECT_EQ(c.bias.shape(), (Shape{4}));
  EXPECT_TRUE(matches_torch_module(c, "torch.nn.Conv2d(3, 4, 3)", input({2, 3, 7, 6}, 4)));
  EXPECT_TRUE(matches_torch_module(c, "torch.nn.Conv2d(3, 4, 3)", input({3, 5, 5}, 5)));

  nn::Conv2d g(4, 6, {3, 2}, {2, 1}, {1, 0}, {1, 2}, 2, false);
  EXPECT_EQ(g.weight.shape(), (Shape{6, 2, 3, 2}));
  EXPECT_FALSE(g.bias.defined());
  EXPECT_TRUE(matches_torch_module(
      g,
      "torch.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), "
      "groups=2, bias=False)",
      input({2, 4, 8, 7}, 6)));
  EXPECT_EQ(g.extra_repr(),
            "4, 6, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), "
            "groups=2, bias=false");
  EXPECT_EQ(c.extra_repr(), "3, 4, kernel_size=(3, 3), stride=(1, 1)");
}

TEST(NnLayers, Conv2dErrors) {
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::Conv2d(3, 4, 3, 1, 0, 1, 2); },
                                            {"Conv2d", "divisible by groups=2", "3 and 4"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::Conv2d(3, 4, 0); },
                                            {"Conv2d", "positive kernel_size", "(0, 0)"}));
  nn::Conv2d c(3, 4, 3);
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        c(zeros({2, 2, 5, 5}));
      },
      {"Conv2d::forward", "[N, 3, H, W]", "[2, 2, 5, 5]"}));
}

// ---- pooling ----

TEST(NnLayers, PoolingMatchesTorch) {
  Tensor x = input({2, 3, 7, 6}, 7);
  nn::MaxPool2d mp(2);
  EXPECT_TRUE(matches_torch_module(mp, "torch.nn.MaxPool2d(2)", x));
  nn::MaxPool2d mp2({3, 2}, nn::Size2(2, 1), {1, 1}, 1, true);
  EXPECT_TRUE(matches_torch_module(
      mp2, "torch.nn.MaxPool2d((3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True)", x));
  nn::AvgPool2d ap(3, 2, 1, false, false);
  EXPECT_TRUE(matches_torch_module(
      ap, "torch.nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)", x));
  nn::AvgPool2d ap2(2);
  EXPECT_TRUE(matches_torch_module(ap2, "torch.nn.AvgPool2d(2)", x));
  nn::AdaptiveAvgPool2d aap({3, 2});
  EXPECT_TRUE(matches_torch_module(aap, "torch.nn.AdaptiveAvgPool2d((3, 2))", x));
  nn::GlobalAvgPool2d gap;
  EXPECT_TRUE(matches_torch_module(
      gap, "torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())", x));
  EXPECT_EQ(gap(x).shape(), (Shape{2, 3}));
  EXPECT_EQ(gap(x.select(0, 0)).shape(), (Shape{3}));
  EXPECT_EQ(mp.extra_repr(),
            "kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), "
            "dilation=(1, 1), ceil_mode=false");
}

TEST(NnLayers, PoolingErrors) {
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::MaxPool2d(2, 2, 2); },
                                            {"MaxPool2d", "half the kernel size", "(2, 2)"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::AvgPool2d(2, 0); },
                                            {"AvgPool2d", "positive kernel_size and stride"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::AdaptiveAvgPool2d(0); },
                                            {"AdaptiveAvgPool2d", "positive output_size"}));
  nn::GlobalAvgPool2d gap;
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        gap(zeros({2, 3}));
      },
      {"GlobalAvgPool2d::forward", "[N, C, H, W]", "[2, 3]"}));
}

// ---- batch norm ----

TEST(NnLayers, BatchNormParametersAndBuffers) {
  nn::BatchNorm2d bn(3);
  EXPECT_TRUE(allclose(bn.weight, ones({3})));
  EXPECT_TRUE(allclose(bn.bias, zeros({3})));
  EXPECT_TRUE(allclose(bn.running_mean, zeros({3})));
  EXPECT_TRUE(allclose(bn.running_var, ones({3})));
  EXPECT_EQ(bn.num_batches_tracked.dtype(), kInt64);
  EXPECT_EQ(bn.num_batches_tracked.dim(), 0);
  EXPECT_EQ(bn.named_buffers().size(), 3u);
  EXPECT_EQ(bn.extra_repr(), "3, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true");
  nn::BatchNorm1d plain(4, 1e-3, std::nullopt, false, false);
  EXPECT_TRUE(plain.parameters().empty());
  EXPECT_TRUE(plain.buffers().empty());
  EXPECT_TRUE(plain.state_dict().empty());
}

TEST(NnLayers, BatchNormMatchesTorch) {
  nn::BatchNorm2d bn(3);
  {  // non-trivial affine parameters and running statistics
    NoGradGuard ng;
    bn.weight.copy_(input({3}, 8));
    bn.bias.copy_(input({3}, 9));
    bn.running_mean.copy_(input({3}, 10));
    bn.running_var.copy_(add(abs(input({3}, 11)), 0.5));
  }
  Tensor x = input({4, 3, 5, 3}, 12);
  EXPECT_TRUE(matches_torch_module(bn, "torch.nn.BatchNorm2d(3)", x, true));
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);
  EXPECT_TRUE(matches_torch_module(bn, "torch.nn.BatchNorm2d(3)", x, false));
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);  // eval does not count

  nn::BatchNorm1d b1(5, 1e-3, 0.3);
  EXPECT_TRUE(matches_torch_module(b1, "torch.nn.BatchNorm1d(5, eps=1e-3, momentum=0.3)",
                                   input({6, 5}, 13)));
  EXPECT_TRUE(matches_torch_module(b1, "torch.nn.BatchNorm1d(5, eps=1e-3, momentum=0.3)",
                                   input({6, 5, 4}, 14)));
  nn::BatchNorm1d cumulative(5, 1e-5, std::nullopt);
  EXPECT_TRUE(matches_torch_module(cumulative, "torch.nn.BatchNorm1d(5, momentum=None)",
                                   input({6, 5}, 15)));
  nn::BatchNorm2d no_affine(3, 1e-5, 0.1, false);
  EXPECT_TRUE(matches_torch_module(no_affine, "torch.nn.BatchNorm2d(3, affine=False)", x));
  // Without running statistics, eval normalises by the batch.
  nn::BatchNorm2d untracked(3, 1e-5, 0.1, true, false);
  EXPECT_TRUE(matches_torch_module(untracked, "torch.nn.BatchNorm2d(3, track_running_stats=False)",
                                   x, false));
}

// Five training steps then eval, in both frameworks: running statistics, the counter and the
// eval output agree (momentum 0.1 and the cumulative average).
TEST(NnLayers, BatchNormRunningStatsOverSteps) {
  for (bool cumulative : {false, true}) {
    nn::BatchNorm2d bn(2, 1e-5, cumulative ? std::nullopt : std::optional<double>(0.1));
    std::vector<Tensor> xs;
    for (uint64_t s = 0; s < 5; ++s) {
      xs.push_back(add(mul(input({3, 2, 4, 4}, 20 + s), double(s + 1)), double(s)));
      bn(xs.back());
    }
    bn.eval();
    Tensor probe = input({2, 2, 4, 4}, 30);
    Tensor y = bn(probe);
    xs.push_back(probe);
    auto want = test::TorchOracle::get().run_code(
        std::string("m = torch.nn.BatchNorm2d(2, momentum=") + (cumulative ? "None" : "0.1") +
            ")\n"
            "for x in [a, b, c, d, e]: m(x)\n"
            "m.eval()\n"
            "out = [m.running_mean, m.running_var, m.num_batches_tracked, m(f)]\n",
        xs);
    EXPECT_TRUE(test::all_close(bn.running_mean, want[0]));
    EXPECT_TRUE(test::all_close(bn.running_var, want[1]));
    EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), want[2].item<int64_t>());
    EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 5);
    EXPECT_TRUE(test::all_close(y, want[3]));
  }
}

TEST(NnLayers, BatchNormErrors) {
  nn::BatchNorm2d bn(3);
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        bn(zeros({2, 3, 4}));
      },
      {"BatchNorm2d::forward", "4D", "[2, 3, 4]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        bn(zeros({2, 4, 2, 2}));
      },
      {"BatchNorm2d::forward", "3 channels", "[2, 4, 2, 2]"}));
  nn::BatchNorm1d b1(3);
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        b1(zeros({2, 3, 4, 4}));
      },
      {"BatchNorm1d::forward", "2D or 3D", "[2, 3, 4, 4]"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        b1(zeros({1, 3}));
      },
      {"more than 1 value per channel"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::BatchNorm1d(3, 1e-5, 1.5); },
                                            {"BatchNorm", "momentum in [0, 1]", "1.5"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::BatchNorm2d(0); },
                                            {"BatchNorm", "num_features > 0", "0"}));
}

// ---- dropout ----

TEST(NnLayers, DropoutTrainAndEval) {
  nn::Dropout d(0.25);
  Tensor x = ones({200, 100});
  Tensor y = d(x);
  const auto v = y.to_vector<float>();
  int64_t zeros_n = 0;
  for (float e : v) {
    if (e == 0)
      ++zeros_n;
    else
      EXPECT_FLOAT_EQ(e, 1 / 0.75f);
  }
  // 20000 draws of p = 0.25: std of the count is ~61; allow 5 sigma.
  EXPECT_NEAR(double(zeros_n), 5000, 310);
  d.eval();
  EXPECT_TRUE(d(x).is_same(x) || equal(d(x), x));
  d.train();
  EXPECT_TRUE(equal(nn::Dropout(0.0)(x), x));
  EXPECT_TRUE(equal(nn::Dropout(1.0)(x), zeros_like(x)));
  EXPECT_EQ(d.extra_repr(), "p=0.25");
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::Dropout(1.5); },
                                            {"Dropout", "between 0 and 1", "1.5"}));
  // Gradient: the same mask scales the incoming gradient.
  Tensor xg = ones({50, 10}).requires_grad_();
  Tensor yg = d(xg);
  sum(yg).backward();
  EXPECT_TRUE(equal(xg.grad(), yg.detach()));
}

// ---- shape layers ----

TEST(NnLayers, FlattenAndReshape) {
  Tensor x = input({2, 3, 4, 5}, 16);
  nn::Flatten f;
  EXPECT_TRUE(matches_torch_module(f, "torch.nn.Flatten()", x));
  nn::Flatten f2(0, 2);
  EXPECT_TRUE(matches_torch_module(f2, "torch.nn.Flatten(0, 2)", x));
  EXPECT_EQ(f2(x).shape(), (Shape{24, 5}));
  nn::Reshape r({5, -1});
  EXPECT_TRUE(matches_torch_module(r, "torch.nn.Unflatten(1, (5, 12))", x.reshape({2, 60})));
  EXPECT_EQ(r(x).shape(), (Shape{2, 5, 12}));
  EXPECT_EQ(r.extra_repr(), "shape=[5, -1]");
  EXPECT_THROW(nn::Reshape({7, -1})(x), ShapeError);
  EXPECT_THROW(nn::Flatten(1, 7)(x), IndexError);
}

// ---- embedding ----

TEST(NnLayers, EmbeddingMatchesTorch) {
  manual_seed(3);
  nn::Embedding e(10, 4, 0);
  EXPECT_EQ(e.weight.shape(), (Shape{10, 4}));
  EXPECT_TRUE(equal(e.weight.select(0, 0), zeros({4})));
  Tensor idx = tensor(std::vector<int64_t>{1, 0, 3, 9, 3, 0}, {2, 3});
  EXPECT_TRUE(matches_torch_module(e, "torch.nn.Embedding(10, 4, padding_idx=0)", idx));
  EXPECT_TRUE(equal(e.weight.grad().select(0, 0), zeros({4})));
  nn::Embedding neg(10, 4, -1);
  EXPECT_EQ(*neg.padding_idx, 9);
  EXPECT_TRUE(matches_torch_module(neg, "torch.nn.Embedding(10, 4, padding_idx=-1)", idx));
  EXPECT_EQ(neg.extra_repr(), "10, 4, padding_idx=9");
}

TEST(NnLayers, EmbeddingErrors) {
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::Embedding(10, 4, 10); },
                                            {"Embedding", "padding_idx in [-10, 10)", "10"}));
  nn::Embedding e(10, 4);
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { e(zeros({3})); },
                                            {"Embedding::forward", "integer indices", "float32"}));
  EXPECT_THROW(e(tensor(std::vector<int64_t>{10})), IndexError);
}

// ---- activations ----

TEST(NnLayers, ActivationsMatchTorch) {
  Tensor x = input({3, 4, 5}, 17);
  struct Case {
    nn::ModulePtr m;
    std::string torch;
  };
  std::vector<Case> cases{
      {std::make_shared<nn::ReLU>(), "torch.nn.ReLU()"},
      {std::make_shared<nn::LeakyReLU>(0.2), "torch.nn.LeakyReLU(0.2)"},
      {std::make_shared<nn::LeakyReLU>(), "torch.nn.LeakyReLU()"},
      {std::make_shared<nn::ELU>(0.5), "torch.nn.ELU(0.5)"},
      {std::make_shared<nn::Sigmoid>(), "torch.nn.Sigmoid()"},
      {std::make_shared<nn::Tanh>(), "torch.nn.Tanh()"},
      {std::make_shared<nn::SiLU>(), "torch.nn.SiLU()"},
      {std::make_shared<nn::Swish>(), "torch.nn.SiLU()"},
      {std::make_shared<nn::GELU>(), "torch.nn.GELU()"},
      {std::make_shared<nn::GELU>("tanh"), "torch.nn.GELU(approximate='tanh')"},
      {std::make_shared<nn::Softmax>(1), "torch.nn.Softmax(dim=1)"},
      {std::make_shared<nn::LogSoftmax>(-1), "torch.nn.LogSoftmax(dim=-1)"},
      {std::make_shared<nn::Identity>(), "torch.nn.Identity()"},
  };
  for (auto& c : cases) EXPECT_TRUE(matches_torch_module(*c.m, c.torch, x)) << c.torch;
  EXPECT_EQ(nn::LeakyReLU(0.2).extra_repr(), "negative_slope=0.2");
  EXPECT_EQ(nn::ELU().extra_repr(), "alpha=1.0");
  EXPECT_EQ(nn::GELU("tanh").extra_repr(), "approximate='tanh'");
  EXPECT_EQ(nn::Softmax(1).extra_repr(), "dim=1");
  EXPECT_EQ(nn::Swish().name(), "SiLU");
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::GELU("fast"); },
                                            {"GELU", "\"none\" or \"tanh\"", "\"fast\""}));
}
