// Metrics on the host in double precision, following scikit-learn's definitions.
#include "anvil/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "anvil/ops/creation.h"

namespace anvil::metrics {

namespace {

std::vector<double> values(const Tensor& t, const char* op, const char* arg) {
  ANVIL_CHECK(t.defined(), ValueError, op, ": expected a defined tensor for '", arg,
              "', got an undefined one");
  return t.to_vector<double>();
}

// Labels of a 1-D tensor: whole, non-negative numbers.
std::vector<int64_t> labels(const Tensor& t, const char* op, const char* arg) {
  std::vector<double> v = values(t, op, arg);
  ANVIL_CHECK(t.dim() == 1, ShapeError, op, ": expected '", arg, "' labels of shape [N], got ",
              to_string(t.shape()));
  ANVIL_CHECK(!v.empty(), ValueError, op, ": expected at least one sample, got '", arg,
              "' of shape ", to_string(t.shape()));
  std::vector<int64_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    ANVIL_CHECK(v[i] >= 0 && v[i] == std::floor(v[i]), ValueError, op, ": expected '", arg,
                "' to hold class labels 0, 1, 2, ..., got ", v[i], " at index ", i);
    out[i] = int64_t(v[i]);
  }
  return out;
}

void check_same_length(size_t a, size_t b, const char* op, const Tensor& y_true,
                       const Tensor& other) {
  ANVIL_CHECK(a == b, ShapeError, op, ": expected one prediction per sample, got y_true of shape ",
              to_string(y_true.shape()), " and predictions of shape ", to_string(other.shape()));
}

// Scores [N, C] as rows; checks shape against n samples.
std::vector<double> score_matrix(const Tensor& s, size_t n, const char* op, const Tensor& y_true,
                                 int64_t* c) {
  std::vector<double> v = values(s, op, "y_score");
  ANVIL_CHECK(s.dim() == 2, ShapeError, op, ": expected y_score of shape [N, C], got ",
              to_string(s.shape()));
  check_same_length(size_t(s.size(0)), n, op, y_true, s);
  *c = s.size(1);
  return v;
}

int64_t num_classes_of(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                       int64_t num_classes, const char* op) {
  const int64_t hi =
      std::max(*std::max_element(a.begin(), a.end()), *std::max_element(b.begin(), b.end()));
  if (num_classes < 0) return hi + 1;
  ANVIL_CHECK(hi < num_classes, IndexError, op, ": label ", hi, " is out of range for ",
              num_classes, " classes");
  return num_classes;
}

// Per-class counts of a labelling.
struct Counts {
  std::vector<double> tp, fp, fn, support;
  std::vector<bool> present;  // class occurs in y_true or y_pred
};

Counts count(const Tensor& y_true, const Tensor& y_pred, int64_t num_classes, const char* op) {
  std::vector<int64_t> t = labels(y_true, op, "y_true"), p = labels(y_pred, op, "y_pred");
  check_same_length(t.size(), p.size(), op, y_true, y_pred);
  const size_t c = size_t(num_classes_of(t, p, num_classes, op));
  Counts k{std::vector<double>(c), std::vector<double>(c), std::vector<double>(c),
           std::vector<double>(c), std::vector<bool>(c)};
  for (size_t i = 0; i < t.size(); ++i) {
    const auto ti = size_t(t[i]), pi = size_t(p[i]);
    k.support[ti] += 1;
    k.present[ti] = k.present[pi] = true;
    if (ti == pi) {
      k.tp[ti] += 1;
    } else {
      k.fp[pi] += 1;
      k.fn[ti] += 1;
    }
  }
  return k;
}

double ratio(double num, double den) { return den > 0 ? num / den : 0.0; }

enum class Kind { Precision, Recall, F1 };

double score(Kind kind, double tp, double fp, double fn) {
  switch (kind) {
    case Kind::Precision:
      return ratio(tp, tp + fp);
    case Kind::Recall:
      return ratio(tp, tp + fn);
    case Kind::F1:
      break;
  }
  return ratio(2 * tp, 2 * tp + fp + fn);
}

std::vector<double> per_class(Kind kind, const Tensor& y_true, const Tensor& y_pred,
                              int64_t num_classes, const char* op) {
  Counts k = count(y_true, y_pred, num_classes, op);
  std::vector<double> out(k.tp.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = score(kind, k.tp[i], k.fp[i], k.fn[i]);
  return out;
}

double averaged(Kind kind, const Tensor& y_true, const Tensor& y_pred, const std::string& average,
                int64_t num_classes, const char* op) {
  ANVIL_CHECK(
      average == "macro" || average == "micro" || average == "weighted" || average == "binary",
      ValueError, op, ": expected average \"macro\", \"micro\", \"weighted\" or \"binary\", got \"",
      average, "\"");
  Counts k = count(y_true, y_pred, num_classes, op);
  const size_t c = k.tp.size();
  if (average == "binary") {
    if (c < 2) return 0.0;  // no sample is of class 1
    return score(kind, k.tp[1], k.fp[1], k.fn[1]);
  }
  if (average == "micro") {
    double tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < c; ++i)
      if (k.present[i]) tp += k.tp[i], fp += k.fp[i], fn += k.fn[i];
    return score(kind, tp, fp, fn);
  }
  double total = 0, weights = 0;
  for (size_t i = 0; i < c; ++i) {
    if (!k.present[i]) continue;
    const double w = average == "weighted" ? k.support[i] : 1.0;
    total += w * score(kind, k.tp[i], k.fp[i], k.fn[i]);
    weights += w;
  }
  return ratio(total, weights);
}

// Binary AUC by the rank-sum (Mann-Whitney) statistic with average ranks for ties, which
// equals the trapezoidal area under the ROC curve.
double binary_auc(const std::vector<bool>& positive, const std::vector<double>& s, const char* op) {
  const size_t n = s.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s[a] < s[b]; });
  double rank_sum = 0, npos = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && s[order[j]] == s[order[i]]) ++j;
    const double avg_rank = (double(i) + double(j) + 1) / 2;  // ranks i+1 .. j
    for (size_t m = i; m < j; ++m)
      if (positive[order[m]]) rank_sum += avg_rank, npos += 1;
    i = j;
  }
  const double nneg = double(n) - npos;
  ANVIL_CHECK(npos > 0 && nneg > 0, ValueError, op,
              ": ROC AUC is undefined when y_true holds only one class (", npos, " positive and ",
              nneg, " negative samples)");
  return (rank_sum - npos * (npos + 1) / 2) / (npos * nneg);
}

double binary_ap(const std::vector<bool>& positive, const std::vector<double>& s, const char* op) {
  const size_t n = s.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s[a] > s[b]; });
  double npos = 0;
  for (bool p : positive) npos += p ? 1 : 0;
  ANVIL_CHECK(npos > 0, ValueError, op,
              ": average precision is undefined when y_true has no positive sample");
  double tp = 0, fp = 0, prev_recall = 0, ap = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    for (; j < n && s[order[j]] == s[order[i]]; ++j) (positive[order[j]] ? tp : fp) += 1;
    const double recall = tp / npos;
    ap += (recall - prev_recall) * tp / (tp + fp);
    prev_recall = recall;
    i = j;
  }
  return ap;
}

// 0/1 labels of a binary problem.
std::vector<bool> binary_labels(const Tensor& y_true, const char* op) {
  std::vector<int64_t> t = labels(y_true, op, "y_true");
  std::vector<bool> pos(t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    ANVIL_CHECK(t[i] <= 1, ValueError, op, ": expected binary y_true labels 0 or 1, got ", t[i],
                " at index ", i, " (pass y_score of shape [N, C] for multiclass)");
    pos[i] = t[i] == 1;
  }
  return pos;
}

std::vector<double> scores_1d(const Tensor& y_score, size_t n, const char* op,
                              const Tensor& y_true) {
  std::vector<double> s = values(y_score, op, "y_score");
  ANVIL_CHECK(y_score.dim() == 1, ShapeError, op, ": expected y_score of shape [N], got ",
              to_string(y_score.shape()));
  check_same_length(s.size(), n, op, y_true, y_score);
  return s;
}

// Regression: per-output metric, averaged over outputs.
template <class F>
double regression(const Tensor& y_true, const Tensor& y_pred, const char* op, F per_output) {
  std::vector<double> t = values(y_true, op, "y_true"), p = values(y_pred, op, "y_pred");
  ANVIL_CHECK(y_true.shape() == y_pred.shape(), ShapeError, op,
              ": expected y_pred of y_true's shape ", to_string(y_true.shape()), ", got ",
              to_string(y_pred.shape()));
  ANVIL_CHECK(y_true.dim() == 1 || y_true.dim() == 2, ShapeError, op,
              ": expected shape [N] or [N, outputs], got ", to_string(y_true.shape()));
  ANVIL_CHECK(!t.empty(), ValueError, op, ": expected at least one sample, got shape ",
              to_string(y_true.shape()));
  const size_t n = size_t(y_true.size(0)), m = y_true.dim() == 2 ? size_t(y_true.size(1)) : 1;
  double total = 0;
  std::vector<double> tc(n), pc(n);
  for (size_t j = 0; j < m; ++j) {
    for (size_t i = 0; i < n; ++i) tc[i] = t[i * m + j], pc[i] = p[i * m + j];
    total += per_output(tc, pc);
  }
  return total / double(m);
}

double mean_of(const std::vector<double>& t, const std::vector<double>& p, double (*f)(double)) {
  double s = 0;
  for (size_t i = 0; i < t.size(); ++i) s += f(t[i] - p[i]);
  return s / double(t.size());
}

}  // namespace

double accuracy(const Tensor& y_true, const Tensor& y_pred) {
  const char* op = "accuracy";
  std::vector<int64_t> t = labels(y_true, op, "y_true");
  std::vector<int64_t> p;
  if (y_pred.defined() && y_pred.dim() == 2) {
    int64_t c = 0;
    std::vector<double> s = score_matrix(y_pred, t.size(), op, y_true, &c);
    ANVIL_CHECK(c > 0, ShapeError, op, ": expected at least one class, got y_pred of shape ",
                to_string(y_pred.shape()));
    for (size_t i = 0; i < t.size(); ++i) {
      const double* row = s.data() + i * size_t(c);
      p.push_back(int64_t(std::max_element(row, row + c) - row));
    }
  } else {
    p = labels(y_pred, op, "y_pred");
    check_same_length(t.size(), p.size(), op, y_true, y_pred);
  }
  double correct = 0;
  for (size_t i = 0; i < t.size(); ++i) correct += t[i] == p[i] ? 1 : 0;
  return correct / double(t.size());
}

double top_k_accuracy(const Tensor& y_true, const Tensor& y_score, int64_t k) {
  const char* op = "top_k_accuracy";
  ANVIL_CHECK(k >= 1, ValueError, op, ": expected k >= 1, got ", k);
  std::vector<int64_t> t = labels(y_true, op, "y_true");
  int64_t c = 0;
  std::vector<double> s = score_matrix(y_score, t.size(), op, y_true, &c);
  double hits = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    ANVIL_CHECK(t[i] < c, IndexError, op, ": label ", t[i], " is out of range for y_score with ", c,
                " classes");
    const double* row = s.data() + i * size_t(c);
    const double st = row[t[i]];
    int64_t above = 0;  // classes ranked before the true one
    for (int64_t j = 0; j < c; ++j) above += row[j] > st || (row[j] == st && j > t[i]);
    hits += above < k ? 1 : 0;
  }
  return hits / double(t.size());
}

Tensor confusion_matrix(const Tensor& y_true, const Tensor& y_pred, int64_t num_classes) {
  const char* op = "confusion_matrix";
  std::vector<int64_t> t = labels(y_true, op, "y_true"), p = labels(y_pred, op, "y_pred");
  check_same_length(t.size(), p.size(), op, y_true, y_pred);
  const int64_t c = num_classes_of(t, p, num_classes, op);
  std::vector<int64_t> m(size_t(c * c), 0);
  for (size_t i = 0; i < t.size(); ++i) m[size_t(t[i] * c + p[i])] += 1;
  return tensor(m, {c, c});
}

std::vector<double> precision_per_class(const Tensor& y_true, const Tensor& y_pred,
                                        int64_t num_classes) {
  return per_class(Kind::Precision, y_true, y_pred, num_classes, "precision_per_class");
}
std::vector<double> recall_per_class(const Tensor& y_true, const Tensor& y_pred,
                                     int64_t num_classes) {
  return per_class(Kind::Recall, y_true, y_pred, num_classes, "recall_per_class");
}
std::vector<double> f1_per_class(const Tensor& y_true, const Tensor& y_pred, int64_t num_classes) {
  return per_class(Kind::F1, y_true, y_pred, num_classes, "f1_per_class");
}

double precision(const Tensor& y_true, const Tensor& y_pred, const std::string& average,
                 int64_t num_classes) {
  return averaged(Kind::Precision, y_true, y_pred, average, num_classes, "precision");
}
double recall(const Tensor& y_true, const Tensor& y_pred, const std::string& average,
              int64_t num_classes) {
  return averaged(Kind::Recall, y_true, y_pred, average, num_classes, "recall");
}
double f1(const Tensor& y_true, const Tensor& y_pred, const std::string& average,
          int64_t num_classes) {
  return averaged(Kind::F1, y_true, y_pred, average, num_classes, "f1");
}

double roc_auc(const Tensor& y_true, const Tensor& y_score, const std::string& average) {
  const char* op = "roc_auc";
  ANVIL_CHECK(average == "macro" || average == "weighted", ValueError, op,
              ": expected average \"macro\" or \"weighted\", got \"", average, "\"");
  ANVIL_CHECK(y_score.defined(), ValueError, op, ": expected a defined y_score");
  if (y_score.dim() == 2 && y_score.size(1) == 2)
    return roc_auc(y_true, y_score.select(1, 1), average);
  if (y_score.dim() != 2) {
    std::vector<bool> pos = binary_labels(y_true, op);
    return binary_auc(pos, scores_1d(y_score, pos.size(), op, y_true), op);
  }
  std::vector<int64_t> t = labels(y_true, op, "y_true");
  int64_t c = 0;
  std::vector<double> s = score_matrix(y_score, t.size(), op, y_true, &c);
  std::vector<double> col(t.size());
  std::vector<bool> pos(t.size());
  double total = 0, weights = 0;
  for (int64_t j = 0; j < c; ++j) {
    double support = 0;
    for (size_t i = 0; i < t.size(); ++i) {
      ANVIL_CHECK(t[i] < c, IndexError, op, ": label ", t[i], " is out of range for y_score with ",
                  c, " classes");
      pos[i] = t[i] == j;
      support += pos[i] ? 1 : 0;
      col[i] = s[i * size_t(c) + size_t(j)];
    }
    ANVIL_CHECK(support > 0, ValueError, op, ": class ", j, " of y_score (", c,
                " columns) never occurs in y_true; one-vs-rest AUC is undefined for it");
    const double w = average == "weighted" ? support : 1.0;
    total += w * binary_auc(pos, col, op);
    weights += w;
  }
  return total / weights;
}

double average_precision(const Tensor& y_true, const Tensor& y_score) {
  const char* op = "average_precision";
  std::vector<bool> pos = binary_labels(y_true, op);
  return binary_ap(pos, scores_1d(y_score, pos.size(), op, y_true), op);
}

double mean_average_precision(const Tensor& y_true, const Tensor& y_score) {
  const char* op = "mean_average_precision";
  std::vector<int64_t> t = labels(y_true, op, "y_true");
  int64_t c = 0;
  std::vector<double> s = score_matrix(y_score, t.size(), op, y_true, &c);
  std::vector<double> col(t.size());
  std::vector<bool> pos(t.size());
  double total = 0;
  for (int64_t j = 0; j < c; ++j) {
    bool any = false;
    for (size_t i = 0; i < t.size(); ++i) {
      ANVIL_CHECK(t[i] < c, IndexError, op, ": label ", t[i], " is out of range for y_score with ",
                  c, " classes");
      pos[i] = t[i] == j;
      any = any || pos[i];
      col[i] = s[i * size_t(c) + size_t(j)];
    }
    ANVIL_CHECK(any, ValueError, op, ": class ", j, " of y_score (", c,
                " columns) never occurs in y_true; its average precision is undefined");
    total += binary_ap(pos, col, op);
  }
  return total / double(c);
}

double mse(const Tensor& y_true, const Tensor& y_pred) {
  return regression(y_true, y_pred, "mse", [](const auto& t, const auto& p) {
    return mean_of(t, p, [](double d) { return d * d; });
  });
}

double rmse(const Tensor& y_true, const Tensor& y_pred) {
  return regression(y_true, y_pred, "rmse", [](const auto& t, const auto& p) {
    return std::sqrt(mean_of(t, p, [](double d) { return d * d; }));
  });
}

double mae(const Tensor& y_true, const Tensor& y_pred) {
  return regression(y_true, y_pred, "mae", [](const auto& t, const auto& p) {
    return mean_of(t, p, [](double d) { return std::abs(d); });
  });
}

double r2(const Tensor& y_true, const Tensor& y_pred) {
  return regression(y_true, y_pred, "r2", [](const auto& t, const auto& p) {
    double mean = 0;
    for (double v : t) mean += v;
    mean /= double(t.size());
    double ss_res = 0, ss_tot = 0;
    for (size_t i = 0; i < t.size(); ++i)
      ss_res += (t[i] - p[i]) * (t[i] - p[i]), ss_tot += (t[i] - mean) * (t[i] - mean);
    if (ss_tot == 0) return ss_res == 0 ? 1.0 : 0.0;
    return 1 - ss_res / ss_tot;
  });
}

}  // namespace anvil::metrics
