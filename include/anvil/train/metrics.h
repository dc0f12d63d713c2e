// Evaluation metrics with scikit-learn's definitions, arguments in scikit-learn's order
// (y_true first). They read their inputs back to the host (any device, any numeric dtype)
// and return doubles computed in double precision; they are not differentiable.
//
// Labels are class indices 0 .. C-1 (int or floating dtype holding whole numbers). Where C is
// not given (num_classes = -1) it is 1 + the largest label seen. Every function throws
// ShapeError for mismatched lengths and ValueError for empty input or a negative / non-whole
// label (IndexError for a label >= a given num_classes).
//
// Zero division: a precision, recall or F1 whose denominator is 0 is 0, as scikit-learn's
// default zero_division="warn" gives (without the warning). Averages over classes
// ("macro", "weighted") run over the classes that occur in y_true or y_pred, as scikit-learn
// does with labels=None; per-class results cover every class 0 .. C-1.
#pragma once
#include <string>
#include <vector>

#include "anvil/core/tensor.h"

namespace anvil::metrics {

// ---- classification from labels or scores ----

// Fraction of correct predictions. y_pred is labels [N], or scores/logits [N, C] (the
// predicted label is the argmax of each row; the first on ties).
double accuracy(const Tensor& y_true, const Tensor& y_pred);

// Fraction of samples whose true label is among the k highest of y_score [N, C], as
// sklearn.metrics.top_k_accuracy_score: ties are broken as its stable sort does (a tied
// class with a larger index ranks higher). Throws ValueError unless 1 <= k.
double top_k_accuracy(const Tensor& y_true, const Tensor& y_score, int64_t k = 5);

// Counts [C, C] (int64): row = true class, column = predicted class.
Tensor confusion_matrix(const Tensor& y_true, const Tensor& y_pred, int64_t num_classes = -1);

// Per-class precision tp / (tp + fp), recall tp / (tp + fn) and F1 2 tp / (2 tp + fp + fn),
// one value per class 0 .. C-1.
std::vector<double> precision_per_class(const Tensor& y_true, const Tensor& y_pred,
                                        int64_t num_classes = -1);
std::vector<double> recall_per_class(const Tensor& y_true, const Tensor& y_pred,
                                     int64_t num_classes = -1);
std::vector<double> f1_per_class(const Tensor& y_true, const Tensor& y_pred,
                                 int64_t num_classes = -1);

// Averaged: "macro" (unweighted mean over classes), "weighted" (mean weighted by each
// class's support in y_true), "micro" (from the summed tp / fp / fn), or "binary" (the score
// of class 1 alone). Throws ValueError for another `average`.
double precision(const Tensor& y_true, const Tensor& y_pred, const std::string& average = "macro",
                 int64_t num_classes = -1);
double recall(const Tensor& y_true, const Tensor& y_pred, const std::string& average = "macro",
              int64_t num_classes = -1);
double f1(const Tensor& y_true, const Tensor& y_pred, const std::string& average = "macro",
          int64_t num_classes = -1);

// Area under the ROC curve, as sklearn.metrics.roc_auc_score (tied scores count one half).
//   binary:     y_true 0/1 labels [N], y_score [N] scores of class 1 (any monotone score:
//               probabilities or logits), or [N, 2] (column 1 is used)
//   multiclass: y_true labels in [0, C), y_score [N, C] probabilities, one-vs-rest,
//               average "macro" or "weighted" (by class prevalence)
// Throws ValueError when y_true holds a single class (AUC is undefined), or, multiclass,
// when a class of y_score never occurs in y_true.
double roc_auc(const Tensor& y_true, const Tensor& y_score, const std::string& average = "macro");

// Average precision, as sklearn.metrics.average_precision_score: sum over thresholds (the
// distinct scores, high to low) of (recall_n - recall_{n-1}) * precision_n.
// y_true 0/1 labels [N], y_score [N]. Throws ValueError when y_true has no positive.
double average_precision(const Tensor& y_true, const Tensor& y_score);

// Mean of the one-vs-rest average precision of each class: y_true labels in [0, C),
// y_score [N, C] (sklearn's average_precision_score on label_binarize(y_true), "macro").
// Throws ValueError when a class never occurs in y_true.
double mean_average_precision(const Tensor& y_true, const Tensor& y_score);

// ---- regression; y_true and y_pred of one shape, [N] or [N, outputs] ----
// With several outputs each metric is computed per output (column) and averaged
// uniformly, as scikit-learn's multioutput="uniform_average".

double mse(const Tensor& y_true, const Tensor& y_pred);
double rmse(const Tensor& y_true, const Tensor& y_pred);  // per output sqrt(mse), then averaged
double mae(const Tensor& y_true, const Tensor& y_pred);
// Coefficient of determination 1 - SS_res / SS_tot. A constant y_true gives 1 when the
// prediction is exact and 0 otherwise (scikit-learn's force_finite=True).
double r2(const Tensor& y_true, const Tensor& y_pred);

}  // namespace anvil::metrics
