// The composed losses (anvil/ops/losses.h) and the loss objects (anvil/nn/losses.h), against
// torch.nn.functional on random inputs, by finite differences in float64, and on bad input.
#include <cmath>
#include <optional>

#include "anvil/nn/losses.h"
#include "anvil/ops/losses.h"
#include "support/check.h"

using namespace anvil;

namespace {

const char* kReductions[] = {"none", "mean", "sum"};

// Deterministic targets in [0, c) with every fifth one set to `ignore` (when given).
Tensor make_targets(const Shape& shape, int64_t c, uint64_t seed,
                    std::optional<int64_t> ignore = {}) {
  std::vector<int64_t> v(size_t(numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = int64_t((i * 7 + seed * 3) % uint64_t(c));
    if (ignore && i % 5 == 2) v[i] = *ignore;
  }
  return tensor(v, shape);
}

// Random class probabilities of `shape` (softmax over dim 1, or 0 for 1-D).
Tensor make_probs(const Shape& shape, uint64_t seed, DType dtype = kFloat32) {
  Tensor x = test::uniform(shape, seed, -2, 2, dtype);
  return softmax(x, shape.size() == 1 ? 0 : 1).detach();
}

std::string red_arg(const char* red) { return std::string(", reduction='") + red + "'"; }

}  // namespace

// ---------------------------------------------------------------- nll_loss

TEST(Losses, NllMatchesTorch) {
  const int64_t n = 9, c = 4;
  Tensor w = test::uniform({c}, 11, 0.1, 2, kFloat32);
  for (const char* red : kReductions)
    for (bool weighted : {false, true})
      for (int64_t ignore : {int64_t(-100), int64_t(1)}) {
        Tensor x = test::uniform({n, c}, 1, -3, 0, kFloat32);
        Tensor t = make_targets({n}, c, 2, ignore);
        std::string expr = std::string("F.nll_loss(a, b") +
                           (weighted ? ", weight=c.detach()" : "") +
                           ", ignore_index=" + std::to_string(ignore) + red_arg(red) + ")";
        std::vector<Tensor> in = {x, t};
        if (weighted) in.push_back(w);
        Reduction r = reduction_from_string(red);
        EXPECT_TRUE(test::matches_torch(expr, in, [=](auto& a) {
          return nll_loss(a[0], a[1], weighted ? a[2] : Tensor(), r, ignore);
        })) << expr;
      }
  // Non-contiguous input with int32 targets; [C] input with a 0-dim target; [N, C, d1, d2].
  Tensor xt = test::uniform({4, 6}, 2, -3, 0, kFloat32).t();  // [6, 4]
  EXPECT_TRUE(test::matches_torch("F.nll_loss(a, b.long())",
                                  {xt, make_targets({6}, 4, 3).to(kInt32)},
                                  [](auto& a) { return nll_loss(a[0], a[1]); }));
  EXPECT_TRUE(
      test::matches_torch("F.nll_loss(a, b, reduction='none')",
                          {test::uniform({5}, 3, -3, 0, kFloat32), tensor<int64_t>({3}, {})},
                          [](auto& a) { return nll_loss(a[0], a[1], {}, Reduction::None); }));
  Tensor x4 = test::uniform({2, 3, 4, 5}, 4, -3, 0, kFloat32);
  Tensor t4 = make_targets({2, 4, 5}, 3, 5, int64_t(-100));
  for (const char* red : kReductions) {
    Reduction r = reduction_from_string(red);
    EXPECT_TRUE(
        test::matches_torch(std::string("F.nll_loss(a, b, weight=c.detach()") + red_arg(red) + ")",
                            {x4, t4, test::uniform({3}, 12, 0.1, 2, kFloat32)},
                            [r](auto& a) { return nll_loss(a[0], a[1], a[2], r); }))
        << red;
  }
}

TEST(Losses, NllEqualsCrossEntropyOnLogSoftmax) {
  Tensor x = test::uniform({6, 5}, 3, -2, 2);
  Tensor t = make_targets({6}, 5, 1, int64_t(-100));
  Tensor w = test::uniform({5}, 4, 0.5, 2);
  EXPECT_TRUE(
      test::all_close(nll_loss(log_softmax(x, 1), t, w), cross_entropy(x, t, w), 1e-12, 1e-12));
  // Every target ignored: 0 / 0, as in torch.
  EXPECT_TRUE(std::isnan(nll_loss(x, full({6}, int64_t(-100), kInt64)).item<double>()));
}

// ---------------------------------------------------------------- binary cross-entropy

TEST(Losses, BinaryCrossEntropyMatchesTorch) {
  for (const char* red : kReductions) {
    Reduction r = reduction_from_string(red);
    for (const Shape& s : {Shape{7}, Shape{4, 3}, Shape{2, 3, 4}}) {
      Tensor p = test::uniform(s, 1, 0.02, 0.98, kFloat32);
      Tensor t = test::uniform(s, 2, 0, 1, kFloat32);  // soft targets
      EXPECT_TRUE(
          test::matches_torch("F.binary_cross_entropy(a, b" + red_arg(red) + ")", {p, t},
                              [r](auto& a) { return binary_cross_entropy(a[0], a[1], {}, r); }))
          << red << " " << to_string(s);
      // Weight broadcast along the last dim.
      Tensor w = test::uniform({s.back()}, 3, 0.1, 2, kFloat32);
      EXPECT_TRUE(test::matches_torch(
          "F.binary_cross_entropy(a, b, weight=c.detach()" + red_arg(red) + ")", {p, t, w},
          [r](auto& a) { return binary_cross_entropy(a[0], a[1], a[2], r); }))
          << red << " " << to_string(s);
    }
  }
  // Non-contiguous probabilities and hard 0/1 targets.
  Tensor pt = test::uniform({5, 3}, 4, 0.02, 0.98, kFloat32).t();
  Tensor tt = gt(test::uniform({3, 5}, 5), 0.0).to(kFloat32);
  EXPECT_TRUE(test::matches_torch("F.binary_cross_entropy(a, b)", {pt, tt},
                                  [](auto& a) { return binary_cross_entropy(a[0], a[1]); }));
}

TEST(Losses, BinaryCrossEntropySaturated) {
  // p exactly 0 or 1: the logs clamp at -100 and the gradient stays finite, as in torch.
  Tensor p = tensor(std::vector<double>{0, 1, 0.5, 1, 0}, {5}).requires_grad_();
  Tensor t = tensor(std::vector<double>{0, 1, 1, 0, 1}, {5});
  Tensor l = binary_cross_entropy(p, t, {}, Reduction::None);
  EXPECT_TRUE(
      test::all_close(l, tensor(std::vector<double>{0, 0, std::log(2.0), 100, 100}, {5}), 1e-12));
  sum(l).backward();
  EXPECT_TRUE(
      test::all_close(p.grad(), tensor(std::vector<double>{0, 0, -2, 1e12, -1e12}, {5}), 1e-12));
}

TEST(Losses, BCEWithLogitsMatchesTorch) {
  for (const char* red : kReductions) {
    Reduction r = reduction_from_string(red);
    for (const Shape& s : {Shape{7}, Shape{4, 3}, Shape{2, 3, 4}}) {
      Tensor x = test::uniform(s, 1, -4, 4, kFloat32);
      Tensor t = test::uniform(s, 2, 0, 1, kFloat32);
      Tensor w = test::uniform({s.back()}, 3, 0.1, 2, kFloat32);
      Tensor pw = test::uniform({s.back()}, 4, 0.5, 3, kFloat32);
      EXPECT_TRUE(test::matches_torch(
          "F.binary_cross_entropy_with_logits(a, b" + red_arg(red) + ")", {x, t},
          [r](auto& a) { return binary_cross_entropy_with_logits(a[0], a[1], {}, r); }))
          << red << " " << to_string(s);
      EXPECT_TRUE(test::matches_torch(
          "F.binary_cross_entropy_with_logits(a, b, weight=c.detach(), pos_weight=d.detach()" +
              red_arg(red) + ")",
          {x, t, w, pw},
          [r](auto& a) { return binary_cross_entropy_with_logits(a[0], a[1], a[2], r, a[3]); }))
          << red << " " << to_string(s);
    }
  }
  // Non-contiguous logits, and logits far in the tails.
  Tensor xt = test::uniform({5, 3}, 5, -4, 4, kFloat32).t();
  Tensor tt = test::uniform({3, 5}, 6, 0, 1, kFloat32);
  EXPECT_TRUE(test::matches_torch("F.binary_cross_entropy_with_logits(a, b, pos_weight=c.detach())",
                                  {xt, tt, test::uniform({5}, 7, 0.5, 3, kFloat32)}, [](auto& a) {
                                    return binary_cross_entropy_with_logits(a[0], a[1], {},
                                                                            Reduction::Mean, a[2]);
                                  }));
  Tensor far = tensor(std::vector<float>{-200, -30, 30, 200, -200, 200}, {6});
  Tensor ft = tensor(std::vector<float>{1, 0, 1, 0, 0, 1}, {6});
  EXPECT_TRUE(test::matches_torch(
      "F.binary_cross_entropy_with_logits(a, b, reduction='none')", {far, ft},
      [](auto& a) { return binary_cross_entropy_with_logits(a[0], a[1], {}, Reduction::None); }));
}

TEST(Losses, BCEWithLogitsEqualsBCEOfSigmoid) {
  Tensor x = test::uniform({3, 4}, 8, -3, 3), t = test::uniform({3, 4}, 9, 0, 1);
  EXPECT_TRUE(test::all_close(binary_cross_entropy_with_logits(x, t),
                              binary_cross_entropy(sigmoid(x), t), 1e-12, 1e-12));
}

// ---------------------------------------------------------------- regression

TEST(Losses, RegressionMatchesTorch) {
  for (const char* red : kReductions) {
    Reduction r = reduction_from_string(red);
    for (const Shape& s : {Shape{7}, Shape{3, 4, 5}}) {
      Tensor x = test::uniform(s, 1, -3, 3, kFloat32), t = test::uniform(s, 2, -3, 3, kFloat32);
      EXPECT_TRUE(test::matches_torch("F.mse_loss(a, b" + red_arg(red) + ")", {x, t},
                                      [r](auto& a) { return mse_loss(a[0], a[1], r); }));
      EXPECT_TRUE(test::matches_torch("F.l1_loss(a, b" + red_arg(red) + ")", {x, t},
                                      [r](auto& a) { return l1_loss(a[0], a[1], r); }));
      for (double d : {0.5, 1.0, 2.5}) {
        EXPECT_TRUE(test::matches_torch(
            "F.huber_loss(a, b" + red_arg(red) + ", delta=" + std::to_string(d) + ")", {x, t},
            [r, d](auto& a) { return huber_loss(a[0], a[1], r, d); }))
            << d;
        EXPECT_TRUE(test::matches_torch(
            "F.smooth_l1_loss(a, b" + red_arg(red) + ", beta=" + std::to_string(d) + ")", {x, t},
            [r, d](auto& a) { return smooth_l1_loss(a[0], a[1], r, d); }))
            << d;
      }
    }
  }
  // Non-contiguous on both sides.
  Tensor x = test::uniform({4, 6}, 3, -3, 3, kFloat32).t();
  Tensor t = test::uniform({6, 8}, 4, -3, 3, kFloat32).slice(1, 0, 8, 2);
  EXPECT_TRUE(test::matches_torch("F.mse_loss(a, b)", {x, t},
                                  [](auto& a) { return mse_loss(a[0], a[1]); }));
  EXPECT_TRUE(
      test::matches_torch("F.l1_loss(a, b)", {x, t}, [](auto& a) { return l1_loss(a[0], a[1]); }));
  EXPECT_TRUE(test::matches_torch("F.huber_loss(a, b, delta=0.7)", {x, t}, [](auto& a) {
    return huber_loss(a[0], a[1], Reduction::Mean, 0.7);
  }));
  EXPECT_TRUE(test::matches_torch("F.smooth_l1_loss(a, b, beta=0.0)", {x, t}, [](auto& a) {
    return smooth_l1_loss(a[0], a[1], Reduction::Mean, 0.0);
  }));
}

// ---------------------------------------------------------------- soft-target cross-entropy

TEST(Losses, SoftCrossEntropyMatchesTorch) {
  const int64_t n = 8, c = 5;
  Tensor w = test::uniform({c}, 11, 0.1, 2, kFloat32);
  for (const char* red : kReductions)
    for (bool weighted : {false, true})
      for (double e : {0.0, 0.15}) {
        Tensor x = test::uniform({n, c}, 1, -3, 3, kFloat32);
        Tensor t = make_probs({n, c}, 2);
        std::string expr = std::string("F.cross_entropy(a, b") +
                           (weighted ? ", weight=c.detach()" : "") +
                           ", label_smoothing=" + std::to_string(e) + red_arg(red) + ")";
        std::vector<Tensor> in = {x, t};
        if (weighted) in.push_back(w);
        Reduction r = reduction_from_string(red);
        EXPECT_TRUE(test::matches_torch(expr, in, [=](auto& a) {
          return soft_cross_entropy(a[0], a[1], weighted ? a[2] : Tensor(), r, e);
        })) << expr;
      }
  // One-hot targets agree with index targets (no weights).
  Tensor x = test::uniform({6, 4}, 3, -3, 3);
  Tensor idx = make_targets({6}, 4, 1);
  EXPECT_TRUE(
      test::all_close(soft_cross_entropy(x, one_hot(idx, 4).to(kFloat64), {}, Reduction::Mean, 0.1),
                      cross_entropy(x, idx, {}, Reduction::Mean, -100, 0.1), 1e-12, 1e-12));
  // Non-contiguous logits; [C]; [N, C, d1, d2] with weights.
  EXPECT_TRUE(test::matches_torch(
      "F.cross_entropy(a, b, label_smoothing=0.2)",
      {test::uniform({4, 6}, 4, -3, 3, kFloat32).t(), make_probs({6, 4}, 5)},
      [](auto& a) { return soft_cross_entropy(a[0], a[1], {}, Reduction::Mean, 0.2); }));
  EXPECT_TRUE(test::matches_torch("F.cross_entropy(a, b)",
                                  {test::uniform({5}, 6, -3, 3, kFloat32), make_probs({5}, 7)},
                                  [](auto& a) { return soft_cross_entropy(a[0], a[1]); }));
  for (const char* red : kReductions) {
    Reduction r = reduction_from_string(red);
    EXPECT_TRUE(test::matches_torch(
        std::string("F.cross_entropy(a, b, weight=c.detach(), label_smoothing=0.1") + red_arg(red) +
            ")",
        {test::uniform({2, 3, 4, 5}, 8, -3, 3, kFloat32), make_probs({2, 3, 4, 5}, 9),
         test::uniform({3}, 10, 0.1, 2, kFloat32)},
        [r](auto& a) { return soft_cross_entropy(a[0], a[1], a[2], r, 0.1); }))
        << red;
  }
}

// ---------------------------------------------------------------- float64 gradient checks

TEST(Losses, Gradcheck) {
  const Shape s{4, 3};
  auto x = [&](uint64_t seed, double lo = -2, double hi = 2) {
    return test::uniform(s, seed, lo, hi).requires_grad_();
  };
  Tensor w3 = test::uniform({3}, 20, 0.2, 2);
  for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    Tensor t = make_targets({4}, 3, 1, int64_t(-100));
    EXPECT_TRUE(test::gradcheck([&](auto& a) { return nll_loss(a[0], t, w3, r); }, {x(1)}));
    EXPECT_TRUE(test::gradcheck([&](auto& a) { return binary_cross_entropy(a[0], a[1], w3, r); },
                                {x(2, 0.1, 0.9), x(3, 0, 1)}));
    EXPECT_TRUE(test::gradcheck(
        [&](auto& a) { return binary_cross_entropy_with_logits(a[0], a[1], w3, r, a[2]); },
        {x(4), x(5, 0, 1), test::uniform({3}, 6, 0.5, 3)}));
    EXPECT_TRUE(test::gradcheck([&](auto& a) { return mse_loss(a[0], a[1], r); }, {x(7), x(8)}));
    EXPECT_TRUE(test::gradcheck([&](auto& a) { return l1_loss(a[0], a[1], r); }, {x(9), x(10)}));
    EXPECT_TRUE(
        test::gradcheck([&](auto& a) { return huber_loss(a[0], a[1], r, 0.8); }, {x(11), x(12)}));
    EXPECT_TRUE(test::gradcheck([&](auto& a) { return smooth_l1_loss(a[0], a[1], r, 0.8); },
                                {x(13), x(14)}));
    EXPECT_TRUE(test::gradcheck([&](auto& a) { return soft_cross_entropy(a[0], a[1], w3, r, 0.1); },
                                {x(15), x(16, 0, 1)}));
  }
}

// ---------------------------------------------------------------- errors

TEST(Losses, Errors) {
  Tensor x = zeros({4, 3});
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        nll_loss(x, tensor<int64_t>({0, 1, 3, 2}, {4}));
      },
      {"nll_loss", "target 3", "3 classes"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        nll_loss(x, tensor<int64_t>({0, -2, 1, 2}, {4}));
      },
      {"nll_loss", "target -2"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        nll_loss(x, tensor<int64_t>({0, 1}, {2}));
      },
      {"nll_loss", "target of shape [4]", "[2]"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { nll_loss(x, zeros({4})); },
                                            {"nll_loss", "int64 or int32", "float32"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        nll_loss(x, tensor<int64_t>({0, 1, 1, 2}, {4}), ones({2}));
      },
      {"nll_loss", "weight of shape [3]", "[2]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        mse_loss(zeros({4, 1}), zeros({4}));
      },
      {"mse_loss", "[4, 1]", "[4]"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { l1_loss(zeros({4}), zeros({4}, kInt64)); },
                                            {"l1_loss", "floating-point", "int64"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { huber_loss(zeros({4}), zeros({4}), Reduction::Mean, 0.0); },
      {"huber_loss", "delta > 0", "0"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { smooth_l1_loss(zeros({4}), zeros({4}), Reduction::Mean, -1.0); },
      {"smooth_l1_loss", "beta"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        binary_cross_entropy(tensor(std::vector<float>{0.5f, 1.5f}), zeros({2}));
      },
      {"binary_cross_entropy", "[0, 1]", "1.5"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        binary_cross_entropy(full({2, 3}, 0.5), zeros({2, 3}), ones({2}));
      },
      {"binary_cross_entropy", "weight", "[2, 3]", "[2]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        binary_cross_entropy_with_logits(zeros({2, 3}), zeros({2, 3}), {}, Reduction::Mean,
                                         ones({4}));
      },
      {"binary_cross_entropy_with_logits", "pos_weight", "[4]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        soft_cross_entropy(x, zeros({4, 2}));
      },
      {"soft_cross_entropy", "[4, 3]", "[4, 2]"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] {
        soft_cross_entropy(x, tensor<int64_t>({0, 1, 1, 2}, {4}));
      },
      {"soft_cross_entropy", "floating-point", "cross_entropy"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        soft_cross_entropy(x, zeros({4, 3}), {}, Reduction::Mean, 1.5);
      },
      {"soft_cross_entropy", "label_smoothing", "1.5"}));
}

// ---------------------------------------------------------------- loss objects

TEST(LossModules, MatchFunctions) {
  Tensor x = test::uniform({6, 4}, 1, -2, 2), idx = make_targets({6}, 4, 2, int64_t(-100));
  Tensor probs = make_probs({6, 4}, 3, kFloat64), w = test::uniform({4}, 4, 0.5, 2);
  Tensor p = sigmoid(x), bt = test::uniform({6, 4}, 5, 0, 1), y = test::uniform({6, 4}, 6);
  auto same = [](const Tensor& a, const Tensor& b) { return test::all_close(a, b, 1e-12, 1e-12); };

  nn::CrossEntropyLoss ce({.weight = w, .label_smoothing = 0.1});
  EXPECT_TRUE(same(ce(x, idx), cross_entropy(x, idx, w, Reduction::Mean, -100, 0.1)));
  EXPECT_TRUE(same(ce(x, probs), soft_cross_entropy(x, probs, w, Reduction::Mean, 0.1)));
  nn::SparseCrossEntropy sce({.reduction = "sum"});
  EXPECT_TRUE(same(sce(x, idx), cross_entropy(x, idx, {}, Reduction::Sum)));
  nn::CategoricalCrossEntropy cce({.reduction = "none", .label_smoothing = 0.2});
  EXPECT_TRUE(same(cce(x, probs), soft_cross_entropy(x, probs, {}, Reduction::None, 0.2)));
  Tensor idx2 = make_targets({6}, 4, 2, int64_t(2));
  nn::NLLLoss nll({.weight = w, .ignore_index = 2});
  EXPECT_TRUE(same(nll(x, idx2), nll_loss(x, idx2, w, Reduction::Mean, 2)));
  nn::BinaryCrossEntropy bce({.weight = w});
  EXPECT_TRUE(same(bce(p, bt), binary_cross_entropy(p, bt, w)));
  nn::BinaryCrossEntropy bce_logits({.from_logits = true});
  EXPECT_TRUE(same(bce_logits(x, bt), binary_cross_entropy_with_logits(x, bt)));
  nn::BCEWithLogits bcel({.pos_weight = w, .reduction = "sum"});
  EXPECT_TRUE(same(bcel(x, bt), binary_cross_entropy_with_logits(x, bt, {}, Reduction::Sum, w)));
  EXPECT_TRUE(same(nn::MSELoss()(x, y), mse_loss(x, y)));
  EXPECT_TRUE(same(nn::L1Loss({.reduction = "none"})(x, y), l1_loss(x, y, Reduction::None)));
  EXPECT_TRUE(same(nn::MAE()(x, y), l1_loss(x, y)));
  EXPECT_TRUE(same(nn::HuberLoss({.delta = 0.3})(x, y), huber_loss(x, y, Reduction::Mean, 0.3)));
  // Gradients flow through the objects.
  Tensor xl = x.detach().requires_grad_();
  ce(xl, idx).backward();
  EXPECT_TRUE(xl.grad().defined());
}

TEST(LossModules, KerasProbabilityInputsMatchTorch) {
  // from_logits = false: probabilities renormalised, clipped to [1e-7, 1 - 1e-7], logged.
  const std::string logq = "torch.log(torch.clamp(a / a.sum(1, keepdim=True), 1e-7, 1 - 1e-7))";
  Tensor p = make_probs({6, 4}, 1);
  p = mul(p, 1.3).detach();  // not normalised
  Tensor idx = make_targets({6}, 4, 2);
  Tensor soft = make_probs({6, 4}, 3);
  nn::SparseCrossEntropy sce({.from_logits = false});
  EXPECT_TRUE(test::matches_torch("F.nll_loss(" + logq + ", b)", {p, idx},
                                  [&](auto& a) { return sce(a[0], a[1]); }));
  nn::CategoricalCrossEntropy cce(
      {.reduction = "sum", .label_smoothing = 0.1, .from_logits = false});
  EXPECT_TRUE(test::matches_torch("-((b * 0.9 + 0.1 / 4) * " + logq + ").sum()", {p, soft},
                                  [&](auto& a) { return cce(a[0], a[1]); }));
  // A probability of exactly 0 is clipped, not -inf.
  Tensor z = tensor(std::vector<float>{0, 1, 0.5f, 0.5f}, {2, 2});
  EXPECT_NEAR(sce(z, tensor<int64_t>({0, 1}, {2})).item<double>(),
              (-std::log(1e-7) - std::log(0.5)) / 2, 1e-4);
}

TEST(LossModules, ValueChecksAndNaN) {
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] {
        nn::BinaryCrossEntropy()(full({3}, 0.5), tensor(std::vector<float>{0, 1, 2}));
      },
      {"BinaryCrossEntropy", "target values in [0, 1]", "2"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] {
        nn::BCEWithLogits()(zeros({3}), tensor(std::vector<float>{0, -1, 1}));
      },
      {"BCEWithLogits", "[0, 1]", "-1"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [] {
        nn::BCEWithLogits()(zeros({3}), tensor<int64_t>({0, 1, 1}));
      },
      {"BCEWithLogits", "floating-point", "int64"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [] {
        nn::CrossEntropyLoss()(zeros({2, 3}), tensor<int64_t>({0, 5}, {2}));
      },
      {"cross_entropy", "target 5", "3 classes"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [] {
        nn::SparseCrossEntropy({.from_logits = false})(full({2, 3}, 0.3),
                                                       tensor<int64_t>({0, 5}, {2}));
      },
      {"nll_loss", "target 5", "3 classes"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [] {
        nn::SparseCrossEntropy()(zeros({2, 3}), zeros({2, 3}));
      },
      {"SparseCrossEntropy", "integer class labels", "CategoricalCrossEntropy"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [] {
        nn::CategoricalCrossEntropy()(zeros({2, 3}), tensor<int64_t>({0, 1}, {2}));
      },
      {"CategoricalCrossEntropy", "one-hot", "SparseCrossEntropy"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::MSELoss({.reduction = "avg"}); },
                                            {"MSELoss", "\"mean\"", "\"avg\""}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::HuberLoss({.delta = -1}); },
                                            {"HuberLoss", "delta > 0"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::CrossEntropyLoss({.label_smoothing = 1.0}); },
                                            {"CrossEntropyLoss", "label_smoothing"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::MSELoss()(Tensor(), zeros({2})); },
                                            {"MSELoss", "undefined input"}));
  // NaN in the input: a NaN loss, no exception.
  const float nan = std::nanf("");
  Tensor xn = tensor(std::vector<float>{0.2f, nan, 0.4f, 0.1f}, {2, 2});
  Tensor idx = tensor<int64_t>({1, 0}, {2});  // nll picks the NaN
  Tensor bt = tensor(std::vector<float>{0, 1, 1, 0}, {2, 2});
  for (const auto& name : nn::loss_names()) {
    auto loss = nn::make_loss(name);
    const bool indexed = name == "cross_entropy" || name == "sparse_cross_entropy" || name == "nll";
    Tensor target = indexed ? idx : bt;
    double v = 0;
    EXPECT_NO_THROW(v = loss->forward(xn, target).item<double>()) << name;
    EXPECT_TRUE(std::isnan(v)) << name << " gave " << v;
  }
}

TEST(LossModules, MakeLoss) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"cross_entropy", "cross_entropy"},
      {"CrossEntropyLoss", "cross_entropy"},
      {"sparse_categorical_crossentropy", "sparse_cross_entropy"},
      {"categorical-crossentropy", "categorical_cross_entropy"},
      {"bce", "binary_cross_entropy"},
      {"BCEWithLogitsLoss", "bce_with_logits"},
      {"mse", "mse"},
      {"mean_squared_error", "mse"},
      {"MAE", "l1"},
      {"huber", "huber"},
      {"nll", "nll"}};
  for (const auto& [in, canonical] : cases) {
    auto loss = nn::make_loss(in);
    ASSERT_TRUE(loss) << in;
    EXPECT_EQ(loss->name(), canonical) << in;
    EXPECT_EQ(nn::make_loss(loss->name())->name(), canonical);  // canonical names round-trip
  }
  EXPECT_EQ(nn::loss_names().size(), 9u);
  EXPECT_EQ(nn::make_loss("mse", "sum")->reduction(), Reduction::Sum);
  EXPECT_TRUE(dynamic_cast<nn::HuberLoss*>(nn::make_loss("huber").get()) != nullptr);
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { nn::make_loss("hinge"); },
      {"make_loss", "unknown loss \"hinge\"", "cross_entropy", "mse", "nll"}));
  EXPECT_TRUE(
      test::throws_with<ValueError>([] { nn::make_loss("mse", "avg"); }, {"MSELoss", "\"avg\""}));
}
