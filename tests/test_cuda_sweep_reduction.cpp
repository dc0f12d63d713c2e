// The CUDA sweep of the reductions, softmax and losses against the CPU, every op x every dtype
// (see support/sweep.h): sum, mean, max, min, amax, amin, argmax, argmin, var and std over all
// dims and over some; softmax and log_softmax along the last dim, a middle dim and a long row;
// the fused cross-entropy (weights, label smoothing, ignore_index, int32 targets, spatial and
// wide inputs) and the composed losses. Skipped without a GPU.
#include <functional>

#include "support/sweep.h"

using namespace anvil;
using namespace anvil::test::sweep;

namespace {

// 4355 elements; dims of odd sizes, so no reduction splits evenly into blocks or warps.
const Shape kShape = {13, 5, 67};

using UnaryFn = std::function<Tensor(const Tensor&)>;

Case reduction(const char* op, std::vector<DType> dtypes, Precision precision, UnaryFn f) {
  return {.op = op,
          .dtypes = std::move(dtypes),
          .inputs = [](DType dt) { return Tensors{values(kShape, 1, dt)}; },
          .body = unary_op(std::move(f)),
          .precision = precision,
          .grads = {0}};
}

// Indices: no gradient.
Case arg_reduction(const char* op, UnaryFn f) {
  Case c = reduction(op, kAllDTypes, Precision::Exact, std::move(f));
  c.grads = {};
  return c;
}

// Values and indices of max/min along a dim; the gradient goes to the indices.
Case extremum_along(const char* op, std::function<ValuesIndices(const Tensor&)> f) {
  return {.op = op,
          .dtypes = kAllDTypes,
          .inputs = [](DType dt) { return Tensors{values(kShape, 1, dt)}; },
          .body = [f](const Args& a) -> Tensors {
            ValuesIndices r = f(a.in[0]);
            return {r.values, r.indices};
          },
          .precision = Precision::Exact,
          .grads = {0}};
}

std::vector<Case> reduction_cases() {
  const auto acc = Precision::Accumulating, exact = Precision::Exact;
  return {
      // Integer and bool sums give int64.
      reduction("sum", kAllDTypes, acc, [](const Tensor& x) { return sum(x); }),
      reduction("sum_dims", kAllDTypes, acc, [](const Tensor& x) { return sum(x, {0, 2}); }),
      reduction("sum_keepdim", kAllDTypes, acc, [](const Tensor& x) { return sum(x, {1}, true); }),
      reduction("mean", kFloats, acc, [](const Tensor& x) { return mean(x); }),
      reduction("mean_dims", kFloats, acc, [](const Tensor& x) { return mean(x, {0, 2}); }),
      reduction("max", kAllDTypes, exact, [](const Tensor& x) { return max(x); }),
      reduction("min", kAllDTypes, exact, [](const Tensor& x) { return min(x); }),
      reduction("amax_dims", kAllDTypes, exact, [](const Tensor& x) { return amax(x, {0, 2}); }),
      reduction("amin_keepdim", kAllDTypes, exact,
                [](const Tensor& x) { return amin(x, {2}, true); }),
      extremum_along("max_dim", [](const Tensor& x) { return max(x, 1); }),
      extremum_along("min_dim", [](const Tensor& x) { return min(x, 2, true); }),
      arg_reduction("argmax", [](const Tensor& x) { return argmax(x); }),
      arg_reduction("argmin", [](const Tensor& x) { return argmin(x); }),
      arg_reduction("argmax_dim", [](const Tensor& x) { return argmax(x, 0); }),
      arg_reduction("argmin_dim", [](const Tensor& x) { return argmin(x, 2, true); }),
      reduction("var", kFloats, acc, [](const Tensor& x) { return var(x); }),
      reduction("var_dims", kFloats, acc, [](const Tensor& x) { return var(x, {0, 2}); }),
      reduction("var_biased_keepdim", kFloats, acc,
                [](const Tensor& x) { return var(x, {2}, 0, true); }),
      reduction("std_dev_dims", kFloats, acc, [](const Tensor& x) { return std_dev(x, {1}); }),
  };
}

// ---- softmax -------------------------------------------------------------------------------

Case softmax_case(const char* op, Shape shape, UnaryFn f) {
  return {.op = op,
          .dtypes = kFloats,
          .inputs = [shape](DType dt) { return Tensors{values(shape, 1, dt, {-5, 5})}; },
          .body = unary_op(std::move(f)),
          .precision = Precision::Accumulating,
          .grads = {0}};
}

std::vector<Case> softmax_cases() {
  // One row per block: longer than a warp's share.
  const Shape wide = {3, 1531};
  return {
      softmax_case("softmax", kShape, [](const Tensor& x) { return softmax(x, -1); }),
      softmax_case("softmax_middle_dim", kShape, [](const Tensor& x) { return softmax(x, 1); }),
      softmax_case("softmax_wide", wide, [](const Tensor& x) { return softmax(x, 1); }),
      softmax_case("log_softmax", kShape, [](const Tensor& x) { return log_softmax(x, -1); }),
      softmax_case("log_softmax_middle_dim", kShape,
                   [](const Tensor& x) { return log_softmax(x, 1); }),
      softmax_case("log_softmax_wide", wide, [](const Tensor& x) { return log_softmax(x, 1); }),
  };
}

// ---- losses --------------------------------------------------------------------------------

constexpr int64_t kRows = 333, kClasses = 13;  // 4329 logits

// Logits [N, C, ...] of the swept dtype with class targets in [first_target, C) (-1 is then
// the ignore_index of the cases that pass it) and, with `weighted`, float32 class weights.
Inputs classified(Shape logits, Shape targets, int64_t first_target = 0, bool weighted = false,
                  DType target_dtype = kInt64) {
  const int64_t classes = logits[1];
  return [=](DType dt) {
    Tensors in = {values(logits, 1, dt, {-4, 4}),
                  integers(targets, 2, target_dtype, first_target, classes)};
    if (weighted) in.push_back(values({classes}, 3, kFloat32, {0.5, 2}));
    return in;
  };
}

// The gradient of the logits (or input) is compared.
Case loss(const char* op, Inputs inputs, Body body) {
  return {.op = op,
          .dtypes = kFloats,
          .inputs = std::move(inputs),
          .body = std::move(body),
          .precision = Precision::Accumulating,
          .grads = {0}};
}

// An element-wise loss of input and target: both gradients are compared.
Case pointwise_loss(const char* op, Inputs inputs,
                    std::function<Tensor(const Tensor&, const Tensor&)> f) {
  Case c = loss(op, std::move(inputs), binary_op(std::move(f)));
  c.grads = {0, 1};
  return c;
}

// Input and target of the swept dtype, of one shape, for the element-wise losses.
Inputs pointwise(Span input, Span target) {
  return [=](DType dt) {
    const Shape s = {kRows, kClasses};
    return Tensors{values(s, 1, dt, input), values(s, 2, dt, target)};
  };
}

std::vector<Case> cross_entropy_cases() {
  const Shape logits = {kRows, kClasses}, targets = {kRows};
  return {
      loss("cross_entropy", classified(logits, targets),
           binary_op([](const Tensor& x, const Tensor& t) { return cross_entropy(x, t); })),
      loss("cross_entropy_sum_weighted", classified(logits, targets, 0, true),
           ternary_op([](const Tensor& x, const Tensor& t, const Tensor& w) {
             return cross_entropy(x, t, w, Reduction::Sum);
           })),
      loss("cross_entropy_none_smoothed", classified(logits, targets),
           binary_op([](const Tensor& x, const Tensor& t) {
             return cross_entropy(x, t, Tensor(), Reduction::None, -100, 0.1);
           })),
      loss("cross_entropy_ignore_index_weighted_smoothed", classified(logits, targets, -1, true),
           ternary_op([](const Tensor& x, const Tensor& t, const Tensor& w) {
             return cross_entropy(x, t, w, Reduction::Mean, -1, 0.2);
           })),
      loss("cross_entropy_int32_targets", classified(logits, targets, 0, false, kInt32),
           binary_op([](const Tensor& x, const Tensor& t) { return cross_entropy(x, t); })),
      // [N, C, H, W] logits: the class dim moves last.
      loss("cross_entropy_spatial", classified({3, kClasses, 7, 11}, {3, 7, 11}),
           binary_op([](const Tensor& x, const Tensor& t) { return cross_entropy(x, t); })),
      // Rows longer than a block.
      loss("cross_entropy_wide", classified({5, 1031}, {5}),
           binary_op([](const Tensor& x, const Tensor& t) { return cross_entropy(x, t); })),
      // The swept dtype is the targets': class indices must be int32 or int64.
      {.op = "cross_entropy_by_target_dtype",
       .dtypes = kIndexDTypes,
       .inputs =
           [=](DType dt) {
             return Tensors{values(logits, 1, kFloat32, {-4, 4}),
                            integers(targets, 2, dt, 0, kClasses)};
           },
       .body = binary_op([](const Tensor& x, const Tensor& t) { return cross_entropy(x, t); }),
       .precision = Precision::Accumulating,
       .grads = {0}},
  };
}

std::vector<Case> composed_loss_cases() {
  const Shape logits = {kRows, kClasses}, targets = {kRows};
  auto log_probs = [=](int64_t first_target, bool weighted) -> Inputs {
    return [=](DType dt) {
      Tensors in = {values(logits, 1, dt, {-3, 0}),
                    integers(targets, 2, kInt64, first_target, kClasses)};
      if (weighted) in.push_back(values({kClasses}, 3, dt, {0.5, 2}));
      return in;
    };
  };
  auto with_weights = [](Inputs base, Shape weight_shape) -> Inputs {
    return [=](DType dt) {
      Tensors in = base(dt);
      in.push_back(values(weight_shape, 3, dt, {0.5, 2}));
      return in;
    };
  };
  const Inputs probabilities = pointwise({0.02, 0.98}, {0, 1});
  const Inputs regression = pointwise({-2, 2}, {-2, 2});
  return {
      loss("nll_loss", log_probs(0, false),
           binary_op([](const Tensor& x, const Tensor& t) { return nll_loss(x, t); })),
      loss("nll_loss_ignore_index_weighted", log_probs(-1, true),
           ternary_op([](const Tensor& x, const Tensor& t, const Tensor& w) {
             return nll_loss(x, t, w, Reduction::Mean, -1);
           })),
      loss("binary_cross_entropy", probabilities,
           binary_op([](const Tensor& x, const Tensor& t) { return binary_cross_entropy(x, t); })),
      loss("binary_cross_entropy_weighted_sum", with_weights(probabilities, {kClasses}),
           ternary_op([](const Tensor& x, const Tensor& t, const Tensor& w) {
             return binary_cross_entropy(x, t, w, Reduction::Sum);
           })),
      loss("binary_cross_entropy_with_logits_pos_weight",
           with_weights(pointwise({-4, 4}, {0, 1}), {kClasses}),
           ternary_op([](const Tensor& x, const Tensor& t, const Tensor& pw) {
             return binary_cross_entropy_with_logits(x, t, Tensor(), Reduction::Mean, pw);
           })),
      pointwise_loss("mse_loss", regression,
                     [](const Tensor& x, const Tensor& t) { return mse_loss(x, t); }),
      pointwise_loss("l1_loss_sum", regression, [](const Tensor& x, const Tensor& t) {
        return l1_loss(x, t, Reduction::Sum);
      }),
      pointwise_loss("huber_loss_none", regression, [](const Tensor& x, const Tensor& t) {
        return huber_loss(x, t, Reduction::None, 0.5);
      }),
      pointwise_loss("smooth_l1_loss", regression, [](const Tensor& x, const Tensor& t) {
        return smooth_l1_loss(x, t, Reduction::Mean, 0.5);
      }),
      loss("soft_cross_entropy_smoothed", pointwise({-4, 4}, {0, 1}),
           binary_op([](const Tensor& x, const Tensor& t) {
             return soft_cross_entropy(x, t, Tensor(), Reduction::Mean, 0.1);
           })),
  };
}

std::vector<Case> all_cases() {
  std::vector<Case> all;
  for (auto family : {reduction_cases, softmax_cases, cross_entropy_cases, composed_loss_cases})
    for (Case& c : family()) all.push_back(std::move(c));
  return all;
}

class CudaSweepReduction : public ::testing::TestWithParam<Param> {};

TEST_P(CudaSweepReduction, CpuReference) { check_reference(GetParam()); }
TEST_P(CudaSweepReduction, MatchesCpu) { check(GetParam()); }

INSTANTIATE_TEST_SUITE_P(, CudaSweepReduction, ::testing::ValuesIn(params(all_cases())), name);

}  // namespace
