// Loss objects: option checks, value checks on targets, and dispatch to the loss functions.
#include "anvil/nn/losses.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>

#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/losses.h"
#include "anvil/ops/reduction.h"

namespace anvil::nn {

namespace {

Reduction parse_reduction(const std::string& s, const char* who) {
  if (s == "none") return Reduction::None;
  if (s == "mean") return Reduction::Mean;
  if (s == "sum") return Reduction::Sum;
  throw ValueError(
      detail::cat(who, ": expected reduction \"mean\", \"sum\" or \"none\", got \"", s, "\""));
}

void check_defined(const Tensor& input, const Tensor& target, const char* who) {
  ANVIL_CHECK(input.defined() && target.defined(), ValueError, who,
              ": expected defined input and target tensors, got an undefined ",
              input.defined() ? "target" : "input");
}

// Binary targets must lie in [0, 1]; NaN is let through (it only poisons the loss).
void check_binary_target(const Tensor& target, const char* who) {
  ANVIL_CHECK(target.is_floating_point(), DTypeError, who,
              ": expected a floating-point target of 0/1 labels or probabilities, got ",
              dtype_name(target.dtype()), " (convert with target.to(kFloat32))");
  if (target.numel() == 0) return;
  const double lo = min(target).item<double>(), hi = max(target).item<double>();
  ANVIL_CHECK(!(lo < 0) && !(hi > 1), ValueError, who, ": expected target values in [0, 1], got ",
              lo < 0 ? lo : hi);
}

}  // namespace

Loss::~Loss() = default;
std::string Loss::name() const { return "loss"; }
Loss::Loss(const std::string& reduction, const char* who)
    : reduction_(parse_reduction(reduction, who)) {}

// ---- cross-entropy family ----

CrossEntropyLoss::CrossEntropyLoss(CrossEntropyOptions options)
    : CrossEntropyLoss(std::move(options), "CrossEntropyLoss") {}

CrossEntropyLoss::CrossEntropyLoss(CrossEntropyOptions options, const char* who)
    : Loss(options.reduction, who), options_(std::move(options)) {
  ANVIL_CHECK(options_.label_smoothing >= 0.0 && options_.label_smoothing < 1.0, ValueError, who,
              ": expected label_smoothing in [0, 1), got ", options_.label_smoothing);
}

Tensor CrossEntropyLoss::forward(const Tensor& input, const Tensor& target) {
  check_defined(input, target, "CrossEntropyLoss");
  if (target.is_floating_point()) return from_probabilities(input, target, "CrossEntropyLoss");
  return from_indices(input, target, "CrossEntropyLoss");
}

namespace {
// log of probabilities as Keras takes it: renormalised over the class dim, clipped to
// [1e-7, 1 - 1e-7].
Tensor keras_log_probs(const Tensor& probs, const char* who) {
  ANVIL_CHECK(probs.is_floating_point(), DTypeError, who,
              ": expected floating-point probabilities, got ", dtype_name(probs.dtype()));
  ANVIL_CHECK(probs.dim() >= 1, ShapeError, who,
              ": expected input of shape [C], [N, C] or [N, C, d1, ...], got shape ",
              to_string(probs.shape()));
  const int64_t cd = probs.dim() == 1 ? 0 : 1;
  Tensor q = div(probs, sum(probs, {cd}, true));
  return log(clamp(q, Scalar(1e-7), Scalar(1 - 1e-7)));
}
}  // namespace

Tensor CrossEntropyLoss::from_indices(const Tensor& input, const Tensor& target,
                                      const char* who) const {
  const auto& o = options_;
  if (o.from_logits)
    return cross_entropy(input, target, o.weight, reduction_, o.ignore_index, o.label_smoothing);
  ANVIL_CHECK(o.label_smoothing == 0.0, ValueError, who,
              ": label_smoothing needs logits (from_logits = true) or probability targets when "
              "the input is probabilities; got label_smoothing = ",
              o.label_smoothing, " with class-index targets");
  return nll_loss(keras_log_probs(input, who), target, o.weight, reduction_, o.ignore_index);
}

Tensor CrossEntropyLoss::from_probabilities(const Tensor& input, const Tensor& target,
                                            const char* who) const {
  const auto& o = options_;
  if (o.from_logits)
    return soft_cross_entropy(input, target, o.weight, reduction_, o.label_smoothing);
  // -sum_c w_c t'_c log q_c: soft_cross_entropy with log q in place of log_softmax(x), which
  // is exactly what it computes for x = log q when q sums to 1 -- but clipping breaks that, so
  // spell it out.
  Tensor logq = keras_log_probs(input, who);
  ANVIL_CHECK(target.shape() == input.shape(), ShapeError, who,
              ": expected target probabilities of the input's shape ", to_string(input.shape()),
              ", got ", to_string(target.shape()));
  const int64_t cd = input.dim() == 1 ? 0 : 1, c = input.size(cd);
  Tensor t = target;
  if (o.label_smoothing > 0)
    t = add(mul(t, 1.0 - o.label_smoothing), o.label_smoothing / double(c));
  Tensor prod = mul(logq, t);
  if (o.weight.defined()) {
    ANVIL_CHECK(o.weight.shape() == Shape{c}, ShapeError, who, ": expected weight of shape [", c,
                "] (one per class), got ", to_string(o.weight.shape()));
    Shape s(size_t(std::max<int64_t>(input.dim() - 1, 1)), 1);
    s[0] = c;
    prod = mul(prod, o.weight.detach().to(input.dtype()).reshape(s));
  }
  Tensor loss = neg(sum(prod, {cd}));
  switch (reduction_) {
    case Reduction::None:
      return loss;
    case Reduction::Sum:
      return sum(loss);
    case Reduction::Mean:
      break;
  }
  return mean(loss);
}

SparseCrossEntropy::SparseCrossEntropy(CrossEntropyOptions options)
    : CrossEntropyLoss(std::move(options), "SparseCrossEntropy") {}

Tensor SparseCrossEntropy::forward(const Tensor& input, const Tensor& target) {
  check_defined(input, target, "SparseCrossEntropy");
  ANVIL_CHECK(!target.is_floating_point(), DTypeError,
              "SparseCrossEntropy: expected integer class labels (int64 or int32), got a ",
              dtype_name(target.dtype()),
              " target; for one-hot or probability targets use CategoricalCrossEntropy");
  return from_indices(input, target, "SparseCrossEntropy");
}

CategoricalCrossEntropy::CategoricalCrossEntropy(CrossEntropyOptions options)
    : CrossEntropyLoss(std::move(options), "CategoricalCrossEntropy") {}

Tensor CategoricalCrossEntropy::forward(const Tensor& input, const Tensor& target) {
  check_defined(input, target, "CategoricalCrossEntropy");
  ANVIL_CHECK(target.is_floating_point(), DTypeError,
              "CategoricalCrossEntropy: expected a floating-point one-hot or probability target "
              "of the input's shape, got ",
              dtype_name(target.dtype()), " of shape ", to_string(target.shape()),
              "; for integer class labels use SparseCrossEntropy");
  return from_probabilities(input, target, "CategoricalCrossEntropy");
}

NLLLoss::NLLLoss(NLLOptions options)
    : Loss(options.reduction, "NLLLoss"), options_(std::move(options)) {}

Tensor NLLLoss::forward(const Tensor& input, const Tensor& target) {
  check_defined(input, target, "NLLLoss");
  return nll_loss(input, target, options_.weight, reduction_, options_.ignore_index);
}

// ---- binary ----

BinaryCrossEntropy::BinaryCrossEntropy(BinaryCrossEntropyOptions options)
    : Loss(options.reduction, "BinaryCrossEntropy"), options_(std::move(options)) {}

Tensor BinaryCrossEntropy::forward(const Tensor& input, const Tensor& target) {
  check_defined(input, target, "BinaryCrossEntropy");
  check_binary_target(target, "BinaryCrossEntropy");
  if (options_.from_logits)
    return binary_cross_entropy_with_logits(input, target, options_.weight, reduction_);
  return binary_cross_entropy(input, target, options_.weight, reduction_);
}

BCEWithLogits::BCEWithLogits(BCEWithLogitsOptions options)
    : Loss(options.reduction, "BCEWithLogits"), options_(std::move(options)) {}

Tensor BCEWithLogits::forward(const Tensor& input, const Tensor& target) {
  check_defined(input, target, "BCEWithLogits");
  check_binary_target(target, "BCEWithLogits");
  return binary_cross_entropy_with_logits(input, target, options_.weight, reduction_,
                                          options_.pos_weight);
}

// ---- regression ----

MSELoss::MSELoss(RegressionOptions options) : Loss(options.reduction, "MSELoss") {}
Tensor MSELoss::forward(const Tensor& input, const Tensor& target) {
  check_defined(input, target, "MSELoss");
  return mse_loss(input, target, reduction_);
}

L1Loss::L1Loss(RegressionOptions options) : Loss(options.reduction, "L1Loss") {}
Tensor L1Loss::forward(const Tensor& input, const Tensor& target) {
  check_defined(input, target, "L1Loss");
  return l1_loss(input, target, reduction_);
}

HuberLoss::HuberLoss(HuberOptions options)
    : Loss(options.reduction, "HuberLoss"), delta_(options.delta) {
  ANVIL_CHECK(delta_ > 0, ValueError, "HuberLoss: expected delta > 0, got ", delta_);
}
Tensor HuberLoss::forward(const Tensor& input, const Tensor& target) {
  check_defined(input, target, "HuberLoss");
  return huber_loss(input, target, reduction_, delta_);
}

// ---- by name ----

namespace {
using Maker = std::function<std::unique_ptr<Loss>(const std::string& reduction)>;

template <class L, class O>
Maker maker() {
  return [](const std::string& r) {
    O o;
    o.reduction = r;
    return std::unique_ptr<Loss>(std::make_unique<L>(std::move(o)));
  };
}

// canonical name -> (aliases, maker)
const std::vector<std::pair<std::vector<std::string>, Maker>>& registry() {
  static const std::vector<std::pair<std::vector<std::string>, Maker>> r = {
      {{"cross_entropy", "crossentropy", "crossentropyloss"},
       maker<CrossEntropyLoss, CrossEntropyOptions>()},
      {{"sparse_cross_entropy", "sparse_categorical_crossentropy",
        "sparse_categorical_cross_entropy", "sparse_crossentropy"},
       maker<SparseCrossEntropy, CrossEntropyOptions>()},
      {{"categorical_cross_entropy", "categorical_crossentropy"},
       maker<CategoricalCrossEntropy, CrossEntropyOptions>()},
      {{"binary_cross_entropy", "binary_crossentropy", "bce", "bceloss"},
       maker<BinaryCrossEntropy, BinaryCrossEntropyOptions>()},
      {{"bce_with_logits", "binary_cross_entropy_with_logits", "bcewithlogits",
        "bcewithlogitsloss"},
       maker<BCEWithLogits, BCEWithLogitsOptions>()},
      {{"mse", "mean_squared_error", "l2", "mseloss"}, maker<MSELoss, RegressionOptions>()},
      {{"l1", "mae", "mean_absolute_error", "l1loss"}, maker<L1Loss, RegressionOptions>()},
      {{"huber", "huber_loss", "huberloss"}, maker<HuberLoss, HuberOptions>()},
      {{"nll", "nll_loss", "nllloss"}, maker<NLLLoss, NLLOptions>()},
  };
  return r;
}
}  // namespace

std::vector<std::string> loss_names() {
  std::vector<std::string> names;
  for (const auto& [aliases, make] : registry()) names.push_back(aliases.front());
  return names;
}

std::unique_ptr<Loss> make_loss(const std::string& name, const std::string& reduction) {
  std::string key = name;
  for (char& ch : key) ch = ch == '-' ? '_' : char(std::tolower(static_cast<unsigned char>(ch)));
  for (const auto& [aliases, make] : registry())
    if (std::find(aliases.begin(), aliases.end(), key) != aliases.end()) return make(reduction);
  std::string known;
  for (const auto& n : loss_names()) known += (known.empty() ? "" : ", ") + n;
  throw ValueError("make_loss: unknown loss \"" + name + "\"; expected one of " + known);
}

}  // namespace anvil::nn
