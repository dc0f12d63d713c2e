// Loss objects: a loss function and its settings, called as loss(input, target). The names
// are PyTorch's (CrossEntropyLoss, MSELoss, ...) plus the Keras ones the training stack uses
// (SparseCrossEntropy, CategoricalCrossEntropy, BinaryCrossEntropy, MAE); `make_loss` builds
// one from a name, for configuration files and the command line.
//
// Settings are passed as an options struct, most readably with designated initializers:
//   nn::CrossEntropyLoss loss({.weight = w, .label_smoothing = 0.1});
//   Tensor l = loss(logits, labels);   // a 0-dim tensor; l.backward() as usual
// `reduction` is "mean" (default), "sum" or "none" (ValueError otherwise, when the loss is
// built). The arithmetic is that of the functions in anvil/ops/loss.h and anvil/ops/losses.h;
// these classes add checks on the values (labels in range, binary targets in [0, 1]) that
// read a little data back to the host. A NaN in the input gives a NaN loss, never a crash.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "anvil/core/tensor.h"
#include "anvil/ops/loss.h"

namespace anvil::nn {

// What every loss provides. (Losses are not Modules: they hold no parameters.)
class Loss {
 public:
  virtual ~Loss();
  // The loss of `input` against `target`: a 0-dim tensor, or per-element / per-sample losses
  // with reduction "none".
  virtual Tensor forward(const Tensor& input, const Tensor& target) = 0;
  Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); }
  // The canonical name make_loss accepts for this loss ("cross_entropy", "mse", ...).
  virtual std::string name() const;
  Reduction reduction() const { return reduction_; }

 protected:
  Loss() = default;
  // Parses "mean"/"sum"/"none"; throws ValueError naming `who` otherwise.
  explicit Loss(const std::string& reduction, const char* who);
  Reduction reduction_ = Reduction::Mean;
};

// ---- classification over C classes ----

struct CrossEntropyOptions {
  Tensor weight = {};              // optional per-class weights [C]
  int64_t ignore_index = -100;     // index targets equal to this count for nothing
  std::string reduction = "mean";  // "mean" divides by the summed weights of counted targets
  double label_smoothing = 0.0;    // in [0, 1)
  // true: input is logits [N, C] (or [C], [N, C, d1, ...]). false: input is probabilities
  // (e.g. after softmax), used as Keras does: renormalised to sum to 1 over C, clipped to
  // [1e-7, 1 - 1e-7], then logged.
  bool from_logits = true;
};

// Cross-entropy as torch.nn.CrossEntropyLoss: target is class indices (int64/int32, input's
// shape without the class dim) or, when floating-point, class probabilities of the input's
// shape (then ignore_index does not apply and "mean" divides by the sample count).
// Throws IndexError for an index target outside [0, C) other than ignore_index.
class CrossEntropyLoss : public Loss {
 public:
  explicit CrossEntropyLoss(CrossEntropyOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string name() const override { return "cross_entropy"; }
  const CrossEntropyOptions& options() const { return options_; }

 protected:
  CrossEntropyLoss(CrossEntropyOptions options, const char* who);
  Tensor from_indices(const Tensor& input, const Tensor& target, const char* who) const;
  Tensor from_probabilities(const Tensor& input, const Tensor& target, const char* who) const;
  CrossEntropyOptions options_;
};

// Keras's SparseCategoricalCrossentropy: integer labels only (DTypeError for a floating
// target, pointing at CategoricalCrossEntropy); otherwise CrossEntropyLoss.
class SparseCrossEntropy : public CrossEntropyLoss {
 public:
  explicit SparseCrossEntropy(CrossEntropyOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string name() const override { return "sparse_cross_entropy"; }
};

// Keras's CategoricalCrossentropy: one-hot or probability targets of the input's shape only
// (DTypeError for integer labels, pointing at SparseCrossEntropy); otherwise
// CrossEntropyLoss. ignore_index is unused.
class CategoricalCrossEntropy : public CrossEntropyLoss {
 public:
  explicit CategoricalCrossEntropy(CrossEntropyOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string name() const override { return "categorical_cross_entropy"; }
};

struct NLLOptions {
  Tensor weight = {};  // optional per-class weights [C]
  int64_t ignore_index = -100;
  std::string reduction = "mean";
};

// torch.nn.NLLLoss: input is log-probabilities (e.g. log_softmax output), target indices.
class NLLLoss : public Loss {
 public:
  explicit NLLLoss(NLLOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string name() const override { return "nll"; }

 private:
  NLLOptions options_;
};

// ---- binary (and multi-label) classification; targets in [0, 1] ----

struct BinaryCrossEntropyOptions {
  Tensor weight = {};  // optional, broadcasts to the input
  std::string reduction = "mean";
  bool from_logits = false;  // true: same as BCEWithLogits
};

// torch.nn.BCELoss / Keras BinaryCrossentropy: input is probabilities in [0, 1] (ValueError
// otherwise), target the same shape with values in [0, 1] (ValueError otherwise).
class BinaryCrossEntropy : public Loss {
 public:
  explicit BinaryCrossEntropy(BinaryCrossEntropyOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string name() const override { return "binary_cross_entropy"; }

 private:
  BinaryCrossEntropyOptions options_;
};

struct BCEWithLogitsOptions {
  Tensor weight = {};      // optional, broadcasts to the input
  Tensor pos_weight = {};  // optional weight of positive examples, one per class [C] (last dim)
  std::string reduction = "mean";
};

// torch.nn.BCEWithLogitsLoss: input is logits, target the same shape with values in [0, 1]
// (ValueError otherwise). Numerically stable for any logit.
class BCEWithLogits : public Loss {
 public:
  explicit BCEWithLogits(BCEWithLogitsOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string name() const override { return "bce_with_logits"; }

 private:
  BCEWithLogitsOptions options_;
};

// ---- regression; input and target of the same shape ----

struct RegressionOptions {
  std::string reduction = "mean";
};

// torch.nn.MSELoss: (x - t)^2.
class MSELoss : public Loss {
 public:
  explicit MSELoss(RegressionOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string name() const override { return "mse"; }
};

// torch.nn.L1Loss: |x - t|, the mean absolute error.
class L1Loss : public Loss {
 public:
  explicit L1Loss(RegressionOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string name() const override { return "l1"; }
};
using MAE = L1Loss;

struct HuberOptions {
  std::string reduction = "mean";
  double delta = 1.0;  // > 0 (ValueError otherwise)
};

// torch.nn.HuberLoss: quadratic within delta of the target, linear beyond.
class HuberLoss : public Loss {
 public:
  explicit HuberLoss(HuberOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string name() const override { return "huber"; }

 private:
  double delta_;
};

// A loss with default options from its name (case and '-' vs '_' do not matter):
//   cross_entropy (crossentropy, crossentropyloss), sparse_cross_entropy
//   (sparse_categorical_crossentropy), categorical_cross_entropy (categorical_crossentropy),
//   binary_cross_entropy (binary_crossentropy, bce, bceloss), bce_with_logits
//   (binary_cross_entropy_with_logits, bcewithlogitsloss), mse (mean_squared_error, l2,
//   mseloss), l1 (mae, mean_absolute_error, l1loss), huber (huberloss), nll (nll_loss, nllloss).
// Throws ValueError listing the canonical names for anything else.
std::unique_ptr<Loss> make_loss(const std::string& name, const std::string& reduction = "mean");
// The canonical names make_loss accepts.
std::vector<std::string> loss_names();

}  // namespace anvil::nn
