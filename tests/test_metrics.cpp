// anvil::metrics against scikit-learn on random labels and scores (ties included).
#include <cmath>

#include "anvil/train/metrics.h"
#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;

namespace {

// Random labels in [0, c) of length n.
Tensor labels(int64_t n, int64_t c, uint64_t seed) {
  return test::uniform({n}, seed, 0, double(c)).to(kInt64);
}

// Scores with many ties: a few distinct values.
Tensor tied_scores(const Shape& s, uint64_t seed, int levels = 4) {
  return div(test::uniform(s, seed, 0, levels).to(kInt64).to(kFloat64), double(levels));
}

const std::string kPrelude =
    "import warnings\nwarnings.simplefilter('ignore')\nimport numpy as np\n"
    "import sklearn.metrics as M\nfrom sklearn.preprocessing import label_binarize\n";

// A scikit-learn expression (over a, b, c, ...) evaluated to a double.
double sk(const std::string& expr, const std::vector<Tensor>& in) {
  auto out = test::TorchOracle::get().run_code(
      kPrelude + "out = torch.tensor(float(" + expr + "), dtype=torch.float64)", in);
  return out.at(0).item<double>();
}

// A scikit-learn expression evaluated to a vector of doubles.
std::vector<double> sk_vec(const std::string& expr, const std::vector<Tensor>& in) {
  auto out = test::TorchOracle::get().run_code(
      kPrelude + "out = torch.tensor(np.asarray(" + expr + ", dtype=np.float64))", in);
  return out.at(0).to_vector<double>();
}

::testing::AssertionResult near(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << "sizes " << a.size() << " vs " << b.size();
  for (size_t i = 0; i < a.size(); ++i)
    if (std::abs(a[i] - b[i]) > 1e-12)
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs " << b[i];
  return ::testing::AssertionSuccess();
}

}  // namespace

TEST(Metrics, Accuracy) {
  ASSERT_TRUE(test::TorchOracle::get().available()) << test::TorchOracle::get().why_unavailable();
  for (uint64_t seed : {1, 2, 3}) {
    Tensor t = labels(40, 4, seed), p = labels(40, 4, seed + 10);
    EXPECT_NEAR(metrics::accuracy(t, p), sk("M.accuracy_score(a, b)", {t, p}), 1e-12);
    Tensor logits = test::uniform({40, 4}, seed + 20, -2, 2, kFloat32);
    EXPECT_NEAR(metrics::accuracy(t, logits), sk("M.accuracy_score(a, b.argmax(1))", {t, logits}),
                1e-12);
    // Labels as floats work too.
    EXPECT_DOUBLE_EQ(metrics::accuracy(t.to(kFloat32), p), metrics::accuracy(t, p));
  }
  EXPECT_DOUBLE_EQ(metrics::accuracy(tensor<int64_t>({0, 1, 2, 1}), tensor<int64_t>({0, 1, 1, 1})),
                   0.75);
}

TEST(Metrics, TopKAccuracy) {
  const int64_t c = 6;
  for (uint64_t seed : {1, 2})
    for (int64_t k : {1, 2, 3, 6}) {
      Tensor t = labels(50, c, seed);
      for (Tensor s : {test::uniform({50, c}, seed + 5), tied_scores({50, c}, seed + 7, 3)}) {
        EXPECT_NEAR(metrics::top_k_accuracy(t, s, k),
                    sk("M.top_k_accuracy_score(a, b, k=" + std::to_string(k) +
                           ", labels=np.arange(" + std::to_string(c) + "))",
                       {t, s}),
                    1e-12)
            << "k=" << k << " seed=" << seed;
      }
    }
  // top-1 is accuracy of the argmax when there are no ties.
  Tensor t = labels(30, 5, 4), s = test::uniform({30, 5}, 5);
  EXPECT_DOUBLE_EQ(metrics::top_k_accuracy(t, s, 1), metrics::accuracy(t, s));
}

TEST(Metrics, ConfusionMatrix) {
  Tensor t = labels(60, 5, 1), p = labels(60, 5, 2);
  Tensor cm = metrics::confusion_matrix(t, p, 5);
  auto ref = test::TorchOracle::get().run_code(
      kPrelude + "out = torch.tensor(M.confusion_matrix(a, b, labels=np.arange(5)))", {t, p});
  EXPECT_EQ(cm.dtype(), kInt64);
  EXPECT_TRUE(equal(cm, ref.at(0).to(kInt64))) << cm << "\n" << ref.at(0);
  // C inferred from the largest label; a larger num_classes pads with zeros.
  Tensor small = metrics::confusion_matrix(tensor<int64_t>({0, 2, 2}), tensor<int64_t>({1, 2, 0}));
  EXPECT_TRUE(equal(small, tensor<int64_t>({0, 1, 0, 0, 0, 0, 1, 0, 1}, {3, 3})));
  EXPECT_EQ(metrics::confusion_matrix(tensor<int64_t>({0, 1}), tensor<int64_t>({1, 1}), 4).shape(),
            (Shape{4, 4}));
}

TEST(Metrics, PrecisionRecallF1) {
  const std::vector<std::pair<Tensor, Tensor>> cases = {
      {labels(50, 4, 1), labels(50, 4, 2)},
      {labels(80, 6, 3), labels(80, 6, 4)},
      // Class 2 never predicted (precision 0/0), class 4 never true (recall 0/0), class 3
      // nowhere (left out of the averages).
      {tensor<int64_t>({0, 1, 2, 2, 1, 0, 0, 1, 2, 5}),
       tensor<int64_t>({0, 1, 1, 0, 4, 0, 5, 1, 4, 5})},
  };
  for (const auto& [t, p] : cases) {
    const int64_t c = std::max(max(t).item<int64_t>(), max(p).item<int64_t>()) + 1;
    const std::string labels_arg = ", labels=np.arange(" + std::to_string(c) + "), average=None)";
    EXPECT_TRUE(near(metrics::precision_per_class(t, p),
                     sk_vec("M.precision_score(a, b" + labels_arg, {t, p})));
    EXPECT_TRUE(
        near(metrics::recall_per_class(t, p), sk_vec("M.recall_score(a, b" + labels_arg, {t, p})));
    EXPECT_TRUE(near(metrics::f1_per_class(t, p), sk_vec("M.f1_score(a, b" + labels_arg, {t, p})));
    for (const char* avg : {"macro", "micro", "weighted"}) {
      const std::string args = std::string("(a, b, average='") + avg + "')";
      EXPECT_NEAR(metrics::precision(t, p, avg), sk("M.precision_score" + args, {t, p}), 1e-12)
          << avg;
      EXPECT_NEAR(metrics::recall(t, p, avg), sk("M.recall_score" + args, {t, p}), 1e-12) << avg;
      EXPECT_NEAR(metrics::f1(t, p, avg), sk("M.f1_score" + args, {t, p}), 1e-12) << avg;
    }
  }
  // Binary: the scores of class 1 (scikit-learn's default average='binary').
  Tensor t = labels(40, 2, 5), p = labels(40, 2, 6);
  EXPECT_NEAR(metrics::precision(t, p, "binary"), sk("M.precision_score(a, b)", {t, p}), 1e-12);
  EXPECT_NEAR(metrics::recall(t, p, "binary"), sk("M.recall_score(a, b)", {t, p}), 1e-12);
  EXPECT_NEAR(metrics::f1(t, p, "binary"), sk("M.f1_score(a, b)", {t, p}), 1e-12);
  // A num_classes beyond the labels only lengthens the per-class results.
  EXPECT_EQ(metrics::f1_per_class(t, p, 4).size(), 4u);
  EXPECT_DOUBLE_EQ(metrics::f1(t, p, "macro", 4), metrics::f1(t, p, "macro"));
}

TEST(Metrics, RocAuc) {
  for (uint64_t seed : {1, 2, 3}) {
    Tensor t = labels(60, 2, seed);
    for (Tensor s : {test::uniform({60}, seed + 10, -3, 3), tied_scores({60}, seed + 20)}) {
      EXPECT_NEAR(metrics::roc_auc(t, s), sk("M.roc_auc_score(a, b)", {t, s}), 1e-12);
    }
    // [N, 2] probabilities: column 1.
    Tensor p2 = softmax(test::uniform({60, 2}, seed + 30, -2, 2), 1);
    EXPECT_NEAR(metrics::roc_auc(t, p2), sk("M.roc_auc_score(a, b[:, 1])", {t, p2}), 1e-12);
    // Multiclass one-vs-rest with tied probabilities (softmax of whole-number logits).
    const int64_t c = 4;
    Tensor tm = labels(80, c, seed + 40);
    Tensor pm = softmax(test::uniform({80, c}, seed + 50, 0, 3).to(kInt64).to(kFloat64), 1);
    for (const char* avg : {"macro", "weighted"})
      EXPECT_NEAR(metrics::roc_auc(tm, pm, avg),
                  sk(std::string("M.roc_auc_score(a, b, multi_class='ovr', average='") + avg + "')",
                     {tm, pm}),
                  1e-12)
          << avg;
  }
  EXPECT_DOUBLE_EQ(metrics::roc_auc(tensor<int64_t>({0, 0, 1, 1}),
                                    tensor(std::vector<double>{0.1, 0.4, 0.35, 0.8})),
                   0.75);
}

TEST(Metrics, AveragePrecision) {
  for (uint64_t seed : {1, 2, 3}) {
    Tensor t = labels(60, 2, seed);
    for (Tensor s : {test::uniform({60}, seed + 10), tied_scores({60}, seed + 20, 3)})
      EXPECT_NEAR(metrics::average_precision(t, s), sk("M.average_precision_score(a, b)", {t, s}),
                  1e-12);
    const int64_t c = 5;
    Tensor tm = labels(70, c, seed + 30);
    for (Tensor s : {test::uniform({70, c}, seed + 40), tied_scores({70, c}, seed + 50, 3)})
      EXPECT_NEAR(metrics::mean_average_precision(tm, s),
                  sk("M.average_precision_score(label_binarize(a, classes=np.arange(" +
                         std::to_string(c) + ")), b, average='macro')",
                     {tm, s}),
                  1e-12);
  }
  EXPECT_DOUBLE_EQ(metrics::average_precision(tensor<int64_t>({0, 0, 1, 1}),
                                              tensor(std::vector<double>{0.1, 0.4, 0.35, 0.8})),
                   (0.5 * 1.0 + 0.5 * (2.0 / 3.0)));
}

TEST(Metrics, Regression) {
  for (const Shape& s : {Shape{40}, Shape{30, 3}}) {
    Tensor t = test::uniform(s, 1, -3, 3),
           p = test::uniform(s, 2, -3, 3);  // float64: scikit-learn works in the input dtype
    EXPECT_NEAR(metrics::mse(t, p), sk("M.mean_squared_error(a, b)", {t, p}), 1e-12);
    EXPECT_NEAR(metrics::rmse(t, p), sk("M.root_mean_squared_error(a, b)", {t, p}), 1e-12);
    EXPECT_NEAR(metrics::mae(t, p), sk("M.mean_absolute_error(a, b)", {t, p}), 1e-12);
    EXPECT_NEAR(metrics::r2(t, p), sk("M.r2_score(a, b)", {t, p}), 1e-12);
    Tensor close = add(t, mul(p, 0.1));
    EXPECT_NEAR(metrics::r2(t, close), sk("M.r2_score(a, b)", {t, close}), 1e-12);
  }
  // Constant y_true: 1 when exact, else 0 (force_finite).
  Tensor k = full({5}, 2.0);
  EXPECT_DOUBLE_EQ(metrics::r2(k, k), 1.0);
  EXPECT_DOUBLE_EQ(metrics::r2(k, add(k, 1.0)), sk("M.r2_score(a, b)", {k, add(k, 1.0)}));
}

TEST(Metrics, Errors) {
  Tensor t = tensor<int64_t>({0, 1, 1, 0});
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        metrics::accuracy(t, tensor<int64_t>({0, 1, 1}));
      },
      {"accuracy", "[4]", "[3]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        metrics::accuracy(t, zeros({3, 2}));
      },
      {"accuracy", "[4]", "[3, 2]"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        metrics::accuracy(tensor<int64_t>({0, -1}), tensor<int64_t>({0, 1}));
      },
      {"accuracy", "y_true", "class labels", "-1"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        metrics::f1(tensor(std::vector<float>{0, 1.5f}), tensor<int64_t>({0, 1}));
      },
      {"f1", "class labels", "1.5"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { metrics::accuracy(zeros({0}, kInt64), zeros({0}, kInt64)); },
      {"accuracy", "at least one"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { metrics::f1(t, t, "samples"); },
                                            {"f1", "\"macro\"", "\"samples\""}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        metrics::confusion_matrix(t, tensor<int64_t>({0, 3, 1, 0}), 2);
      },
      {"confusion_matrix", "label 3", "2 classes"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        metrics::top_k_accuracy(t, zeros({4, 3}), 0);
      },
      {"top_k_accuracy", "k >= 1", "0"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        metrics::top_k_accuracy(tensor<int64_t>({0, 3}), zeros({2, 3}), 1);
      },
      {"top_k_accuracy", "label 3", "3 classes"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        metrics::roc_auc(tensor<int64_t>({1, 1, 1}), tensor(std::vector<double>{0.1, 0.2, 0.3}));
      },
      {"roc_auc", "only one class"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        metrics::roc_auc(tensor<int64_t>({0, 2, 1}), tensor(std::vector<double>{0.1, 0.2, 0.3}));
      },
      {"roc_auc", "binary", "2"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        metrics::roc_auc(tensor<int64_t>({0, 1, 1}), full({3, 3}, 1.0 / 3));
      },
      {"roc_auc", "class 2", "never occurs"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { metrics::roc_auc(t, zeros({4}), "micro"); },
                                            {"roc_auc", "\"micro\""}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { metrics::average_precision(zeros({3}, kInt64), zeros({3})); },
      {"average_precision", "no positive"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { metrics::mean_average_precision(t, zeros({4})); },
                                            {"mean_average_precision", "[N, C]", "[4]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        metrics::mse(zeros({4}), zeros({4, 1}));
      },
      {"mse", "[4]", "[4, 1]"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { metrics::r2(zeros({0}), zeros({0})); },
                                            {"r2", "at least one"}));
}
