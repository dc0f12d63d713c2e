// reduction_from_string and cross_entropy.
#include <cmath>

#include "support/check.h"

using namespace anvil;

namespace {
Tensor targets(std::vector<int64_t> v, const Shape& s = {}) { return tensor(v, s); }

// Deterministic targets in [0, c) with every fifth one set to `ignore` (when given).
Tensor make_targets(const Shape& shape, int64_t c, uint64_t seed, std::optional<int64_t> ignore) {
  std::vector<int64_t> v(size_t(numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = int64_t((i * 7 + seed * 3) % uint64_t(c));
    if (ignore && i % 5 == 2) v[i] = *ignore;
  }
  return tensor(v, shape);
}

double lse(std::vector<double> x) {
  double s = 0;
  for (double v : x) s += std::exp(v);
  return std::log(s);
}
}  // namespace

TEST(Loss, ReductionFromString) {
  EXPECT_EQ(reduction_from_string("none"), Reduction::None);
  EXPECT_EQ(reduction_from_string("mean"), Reduction::Mean);
  EXPECT_EQ(reduction_from_string("sum"), Reduction::Sum);
  EXPECT_TRUE(test::throws_with<ValueError>([] { reduction_from_string("avg"); },
                                            {"reduction_from_string", "\"none\"", "\"avg\""}));
}

TEST(Loss, CrossEntropyValues) {
  Tensor x = tensor(std::vector<double>{1, 2, 3, 0, 0, 0, 3, 1, -1}, {3, 3});
  Tensor t = targets({2, 0, 1}, {3});
  const double l0 = lse({1, 2, 3}) - 3, l1 = std::log(3.0), l2 = lse({3, 1, -1}) - 1;
  EXPECT_TRUE(test::all_close(cross_entropy(x, t, {}, Reduction::None),
                              tensor(std::vector<double>{l0, l1, l2}, {3}), 1e-12));
  EXPECT_NEAR(cross_entropy(x, t).item<double>(), (l0 + l1 + l2) / 3, 1e-12);
  EXPECT_NEAR(cross_entropy(x, t, {}, Reduction::Sum).item<double>(), l0 + l1 + l2, 1e-12);
  // Weights: mean divides by the weights of the counted targets (w2 + w0 + w1).
  Tensor w = tensor(std::vector<double>{0.5, 2, 4}, {3});
  EXPECT_NEAR(cross_entropy(x, t, w).item<double>(), (4 * l0 + 0.5 * l1 + 2 * l2) / 6.5, 1e-12);
  // ignore_index: row 1 counts for nothing, in the loss and in the mean's denominator.
  Tensor ti = targets({2, -100, 1}, {3});
  EXPECT_NEAR(cross_entropy(x, ti).item<double>(), (l0 + l2) / 2, 1e-12);
  EXPECT_NEAR(cross_entropy(x, ti, w).item<double>(), (4 * l0 + 2 * l2) / 6, 1e-12);
  EXPECT_TRUE(test::all_close(cross_entropy(x, ti, {}, Reduction::None),
                              tensor(std::vector<double>{l0, 0, l2}, {3}), 1e-12));
  EXPECT_NEAR(cross_entropy(x, targets({2, 1, 1}, {3}), {}, Reduction::Mean, 1).item<double>(), l0,
              1e-12);
  // Label smoothing e: (1 - e) nll + e * mean_c(-logp_c).
  const double e = 0.2;
  const double s0 = lse({1, 2, 3}) - 2;  // -mean(logp) of row 0
  EXPECT_NEAR(cross_entropy(x.slice(0, 0, 1), targets({2}, {1}), {}, Reduction::Mean, -100, e)
                  .item<double>(),
              (1 - e) * l0 + e * s0, 1e-12);
  // [C] logits with a 0-dim target.
  Tensor one =
      cross_entropy(tensor(std::vector<double>{1, 2, 3}), targets({2}, {}), {}, Reduction::None);
  EXPECT_EQ(one.dim(), 0);
  EXPECT_NEAR(one.item<double>(), l0, 1e-12);
  // int32 targets.
  EXPECT_NEAR(cross_entropy(x, t.to(kInt32)).item<double>(), (l0 + l1 + l2) / 3, 1e-12);
  // Every target ignored: mean is 0 / 0 (nan), as in torch.
  EXPECT_TRUE(std::isnan(cross_entropy(x, targets({-100, -100, -100}, {3})).item<double>()));
}

TEST(Loss, CrossEntropyExtremeLogits) {
  Tensor x = tensor(std::vector<float>{1000, -1000, -1000, 1000}, {2, 2}).requires_grad_();
  Tensor l = cross_entropy(x, targets({1, 1}, {2}), {}, Reduction::None);
  EXPECT_TRUE(test::all_close(l, tensor(std::vector<float>{2000, 0}, {2})));
  sum(l).backward();
  EXPECT_TRUE(test::all_close(x.grad(), tensor(std::vector<float>{1, -1, 0, 0}, {2, 2})));
}

TEST(Loss, CrossEntropyGradcheck) {
  Tensor w = test::uniform({4}, 3, 0.2, 2);
  for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum})
    for (bool weighted : {false, true})
      for (double e : {0.0, 0.3}) {
        Tensor x = test::uniform({5, 4}, 1, -2, 2).requires_grad_();
        Tensor t = make_targets({5}, 4, 2, int64_t(-100));
        Tensor wt = weighted ? w : Tensor();
        EXPECT_TRUE(
            test::gradcheck([&](auto& a) { return cross_entropy(a[0], t, wt, r, -100, e); }, {x}))
            << int(r) << " " << weighted << " " << e;
      }
  // [N, C, d] logits.
  Tensor x3 = test::uniform({2, 3, 4}, 4, -2, 2).requires_grad_();
  Tensor t3 = make_targets({2, 4}, 3, 5, int64_t(-100));
  EXPECT_TRUE(
      test::gradcheck([&](auto& a) { return cross_entropy(a[0], t3, w.slice(0, 0, 3)); }, {x3}));
}

TEST(Loss, CrossEntropyMatchesTorch) {
  const int64_t n = 12, c = 5;
  Tensor w = test::uniform({c}, 11, 0.1, 2, kFloat32);
  for (const char* red : {"none", "mean", "sum"})
    for (bool weighted : {false, true})
      for (int64_t ignore : {int64_t(-100), int64_t(2)})
        for (double e : {0.0, 0.1}) {
          Tensor x = test::uniform({n, c}, 1, -3, 3, kFloat32);
          Tensor t = make_targets({n}, c, 2, ignore);
          std::string expr =
              std::string("F.cross_entropy(a, b") + (weighted ? ", weight=c.detach()" : "") +
              ", ignore_index=" + std::to_string(ignore) +
              ", label_smoothing=" + std::to_string(e) + ", reduction='" + red + "')";
          std::vector<Tensor> in = {x, t};
          if (weighted) in.push_back(w);
          Reduction r = reduction_from_string(red);
          EXPECT_TRUE(test::matches_torch(expr, in, [=](auto& a) {
            return cross_entropy(a[0], a[1], weighted ? a[2] : Tensor(), r, ignore, e);
          })) << expr;
        }
  // Non-contiguous logits, int32 targets, [C] logits, [N, C, d1, d2] logits.
  Tensor xt = test::uniform({5, 7}, 2, -3, 3, kFloat32).t();  // [7, 5]
  EXPECT_TRUE(test::matches_torch(
      "F.cross_entropy(a, b.long(), label_smoothing=0.05)",
      {xt, make_targets({7}, 5, 3, {}).to(kInt32)},
      [](auto& a) { return cross_entropy(a[0], a[1], {}, Reduction::Mean, -100, 0.05); }));
  EXPECT_TRUE(test::matches_torch("F.cross_entropy(a, b)",
                                  {test::uniform({6}, 4, -3, 3, kFloat32), targets({4}, {})},
                                  [](auto& a) { return cross_entropy(a[0], a[1]); }));
  // Large enough to run on threads.
  EXPECT_TRUE(test::matches_torch(
      "F.cross_entropy(a, b, weight=c.detach(), ignore_index=3, label_smoothing=0.1)",
      {test::uniform({1000, 40}, 13, -3, 3, kFloat32), make_targets({1000}, 40, 7, int64_t(3)),
       test::uniform({40}, 14, 0.1, 2, kFloat32)},
      [](auto& a) { return cross_entropy(a[0], a[1], a[2], Reduction::Mean, 3, 0.1); }));
  Tensor x4 = test::uniform({2, 4, 3, 5}, 5, -3, 3, kFloat32);
  Tensor t4 = make_targets({2, 3, 5}, 4, 6, int64_t(-100));
  for (const char* red : {"none", "mean"}) {
    Reduction r = reduction_from_string(red);
    EXPECT_TRUE(test::matches_torch(
        std::string("F.cross_entropy(a, b, weight=c.detach(), label_smoothing=0.1, reduction='") +
            red + "')",
        {x4, t4, test::uniform({4}, 12, 0.1, 2, kFloat32)},
        [r](auto& a) { return cross_entropy(a[0], a[1], a[2], r, -100, 0.1); }))
        << red;
  }
}

TEST(Loss, CrossEntropyLanguageModelShapes) {
  // A language model's loss: logits [B, T, V] flattened to [B * T, V] with a vocabulary wider
  // than the rows are many, and padding positions marked -100 (every fifth here).
  const int64_t b = 3, t = 41, v = 2003;
  Tensor logits = test::uniform({b, t, v}, 21, -6, 6, kFloat32);
  Tensor tgt = make_targets({b * t}, v, 22, int64_t(-100));
  for (const char* red : {"mean", "sum", "none"}) {
    const Reduction r = reduction_from_string(red);
    EXPECT_TRUE(test::matches_torch(
        std::string("F.cross_entropy(a.reshape(-1, a.shape[-1]), b, reduction='") + red + "')",
        {logits, tgt}, [r](auto& a) { return cross_entropy(a[0].reshape({-1, v}), a[1], {}, r); }))
        << red;
  }
  // The ignored rows get no gradient, and the mean divides by the counted rows only.
  Tensor x = logits.reshape({b * t, v}).detach().requires_grad_();
  Tensor loss = cross_entropy(x, tgt);
  loss.backward();
  EXPECT_TRUE(test::all_close(x.grad().select(0, 2), zeros({v}), 0, 0));
  Tensor counted = cross_entropy(x.detach(), tgt, {}, Reduction::Sum);
  const double kept = double(sum(ne(tgt, -100)).item<int64_t>());
  EXPECT_NEAR(loss.item<double>(), counted.item<double>() / kept, 1e-5);
}

TEST(Loss, CrossEntropyErrors) {
  Tensor x = zeros({4, 3});
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        cross_entropy(x, targets({0, 1, 3, 2}, {4}));
      },
      {"cross_entropy", "target 3", "3 classes"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        cross_entropy(x, targets({0, -1, 2, 2}, {4}));
      },
      {"cross_entropy", "target -1", "3 classes"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        cross_entropy(x, targets({0, 1, 2}, {3}));
      },
      {"cross_entropy", "target of shape [4]", "[4, 3]", "[3]"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { cross_entropy(x, zeros({4})); },
                                            {"cross_entropy", "int64 or int32", "float32"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] {
        cross_entropy(zeros({4, 3}, kInt64), targets({0, 1, 2, 2}, {4}));
      },
      {"cross_entropy", "floating-point", "int64"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        cross_entropy(x, targets({0, 1, 2, 2}, {4}), ones({4}));
      },
      {"cross_entropy", "weight of shape [3]", "[4]"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        cross_entropy(x, targets({0, 1, 2, 2}, {4}), {}, Reduction::Mean, -100, 1.0);
      },
      {"cross_entropy", "label_smoothing in [0, 1)", "1"}));
  EXPECT_TRUE(
      test::throws_with<ShapeError>([&] { cross_entropy(scalar_tensor(1.0), targets({0}, {})); },
                                    {"cross_entropy", "[N, C]", "[]"}));
}
