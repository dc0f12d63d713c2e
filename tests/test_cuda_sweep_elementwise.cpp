// The CUDA sweep of the element-wise ops against the CPU, every op x every dtype (see
// support/sweep.h): unary math, activations and predicates; binary arithmetic, comparisons and
// logic (broadcast, strided, with scalars, in place); where and clamp; casts between every
// pair of dtypes; copies of non-contiguous views; fills. Skipped without a GPU.
#include <functional>

#include "support/sweep.h"

using namespace anvil;
using namespace anvil::test::sweep;

namespace {

// 4107 elements: 17 blocks of 256 threads, the last one partial.
const Shape kShape = {37, 111};

using UnaryFn = std::function<Tensor(const Tensor&)>;
using BinaryFn = std::function<Tensor(const Tensor&, const Tensor&)>;

Inputs one(Span floats, Span ints) {
  return [=](DType dt) { return Tensors{values(kShape, 1, dt, floats, ints)}; };
}

Inputs two(Span a_floats, Span a_ints, Span b_floats, Span b_ints) {
  return [=](DType dt) {
    return Tensors{values(kShape, 1, dt, a_floats, a_ints),
                   values(kShape, 2, dt, b_floats, b_ints)};
  };
}

// Small integers in every dtype, so that comparisons meet ties and logic meets zeros.
Inputs two_integral(int64_t lo, int64_t hi) {
  return [=](DType dt) {
    return Tensors{integers(kShape, 1, dt, lo, hi), integers(kShape, 2, dt, lo, hi)};
  };
}

// ---- unary ---------------------------------------------------------------------------------

Case unary(const char* op, std::vector<DType> dtypes, Inputs inputs, UnaryFn f) {
  return {.op = op,
          .dtypes = std::move(dtypes),
          .inputs = std::move(inputs),
          .body = unary_op(std::move(f)),
          .grads = {0}};
}

// Bool results: no gradient.
Case predicate(const char* op, UnaryFn f) {
  Case c = unary(op, kAllDTypes, one({-3, 3}, {-100, 100}), std::move(f));
  c.grads = {};
  return c;
}

std::vector<Case> unary_cases() {
  const Inputs any = one({-3, 3}, {-100, 100}), small = one({-3, 3}, {-10, 10});
  const Inputs positive = one({0.1, 3}, {1, 100});
  return {
      unary("neg", kNumeric, any, [](const Tensor& x) { return neg(x); }),
      unary("abs", kNumeric, any, [](const Tensor& x) { return abs(x); }),
      unary("sign", kNumeric, any, [](const Tensor& x) { return sign(x); }),
      unary("square", kNumeric, any, [](const Tensor& x) { return square(x); }),
      unary("relu", kNumeric, any, [](const Tensor& x) { return relu(x); }),
      // Floating math: integer and bool inputs compute in float32.
      unary("exp", kAllDTypes, small, [](const Tensor& x) { return exp(x); }),
      unary("log", kAllDTypes, positive, [](const Tensor& x) { return log(x); }),
      unary("sqrt", kAllDTypes, positive, [](const Tensor& x) { return sqrt(x); }),
      unary("rsqrt", kAllDTypes, positive, [](const Tensor& x) { return rsqrt(x); }),
      unary("sin", kAllDTypes, any, [](const Tensor& x) { return sin(x); }),
      unary("cos", kAllDTypes, any, [](const Tensor& x) { return cos(x); }),
      unary("sigmoid", kAllDTypes, any, [](const Tensor& x) { return sigmoid(x); }),
      unary("tanh", kAllDTypes, any, [](const Tensor& x) { return tanh(x); }),
      // Activations torch defines for floating inputs only.
      unary("leaky_relu", kFloats, any, [](const Tensor& x) { return leaky_relu(x, 0.1); }),
      unary("elu", kFloats, any, [](const Tensor& x) { return elu(x, 0.7); }),
      unary("silu", kFloats, any, [](const Tensor& x) { return silu(x); }),
      unary("gelu", kFloats, any, [](const Tensor& x) { return gelu(x); }),
      unary("gelu_tanh", kFloats, any, [](const Tensor& x) { return gelu(x, "tanh"); }),
      predicate("logical_not", [](const Tensor& x) { return logical_not(x); }),
      predicate("isnan", [](const Tensor& x) { return isnan(x); }),
  };
}

// ---- binary --------------------------------------------------------------------------------

Case binary(const char* op, std::vector<DType> dtypes, Inputs inputs, BinaryFn f) {
  return {.op = op,
          .dtypes = std::move(dtypes),
          .inputs = std::move(inputs),
          .body = binary_op(std::move(f)),
          .grads = {0, 1}};
}

Case with_grad_precision(Case c, Precision p) {
  c.grad_precision = p;
  return c;
}

Case comparison(const char* op, BinaryFn f) {
  Case c = binary(op, kAllDTypes, two_integral(-4, 5), std::move(f));
  c.grads = {};
  return c;
}

std::vector<Case> binary_cases() {
  const Span any{-2, 2}, ints{-100, 100};
  const Inputs plain = two(any, ints, any, ints), first = one(any, ints);
  // Nonzero divisors; powers of positive bases, and integer powers that stay in range.
  const Inputs divisible = two(any, ints, {0.5, 2}, {1, 50});
  const Inputs powers = two({0.1, 3}, {-5, 6}, {-3, 3}, {0, 6});
  return {
      binary("add", kAllDTypes, plain, [](const Tensor& a, const Tensor& b) { return add(a, b); }),
      // bool arithmetic is logic: + and * are or and and; - and pow have no bool meaning.
      binary("sub", kNumeric, plain, [](const Tensor& a, const Tensor& b) { return sub(a, b); }),
      binary("mul", kAllDTypes, plain, [](const Tensor& a, const Tensor& b) { return mul(a, b); }),
      // True division: integer and bool operands give float32.
      binary("div", kAllDTypes, divisible,
             [](const Tensor& a, const Tensor& b) { return div(a, b); }),
      // Its gradients are chains of 16-bit roundings (g * (e * x^(e-1)), g * (y * log(x))):
      // on an H200 float16 input 0 differed by 2 ulps where x^(e-1) lay a float ulp from a
      // float16 midpoint (see Precision::Chained).
      with_grad_precision(binary("pow", kNumeric, powers,
                                 [](const Tensor& a, const Tensor& b) { return pow(a, b); }),
                          Precision::Chained),
      binary("maximum", kAllDTypes, plain,
             [](const Tensor& a, const Tensor& b) { return maximum(a, b); }),
      binary("minimum", kAllDTypes, plain,
             [](const Tensor& a, const Tensor& b) { return minimum(a, b); }),
      comparison("eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); }),
      comparison("ne", [](const Tensor& a, const Tensor& b) { return ne(a, b); }),
      comparison("lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); }),
      comparison("le", [](const Tensor& a, const Tensor& b) { return le(a, b); }),
      comparison("gt", [](const Tensor& a, const Tensor& b) { return gt(a, b); }),
      comparison("ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); }),
      comparison("logical_and", [](const Tensor& a, const Tensor& b) { return logical_and(a, b); }),
      comparison("logical_or", [](const Tensor& a, const Tensor& b) { return logical_or(a, b); }),
      // A row broadcast over the matrix (its gradient sums the columns).
      {.op = "add_broadcast",
       .dtypes = kAllDTypes,
       .inputs =
           [=](DType dt) {
             return Tensors{values(kShape, 1, dt, any, ints),
                            values({kShape[1]}, 2, dt, any, ints)};
           },
       .body = binary_op([](const Tensor& a, const Tensor& b) { return add(a, b); }),
       .grad_precision = Precision::Accumulating,
       .grads = {0, 1}},
      // A transposed operand: strided reads.
      {.op = "mul_transposed",
       .dtypes = kAllDTypes,
       .inputs =
           [=](DType dt) {
             return Tensors{values({kShape[1], kShape[0]}, 1, dt, any, ints),
                            values(kShape, 2, dt, any, ints)};
           },
       .body = binary_op([](const Tensor& a, const Tensor& b) { return mul(a.t(), b); }),
       .grads = {0, 1}},
      // Scalars: an integer one keeps the dtype (bool becomes int64), a floating one makes
      // integers float32.
      unary("add_scalar", kAllDTypes, first, [](const Tensor& a) { return add(a, 3); }),
      unary("mul_scalar", kAllDTypes, first, [](const Tensor& a) { return mul(a, 2.5); }),
      unary("rsub_scalar", kAllDTypes, first, [](const Tensor& a) { return 1.5 - a; }),
      binary("sub_alpha", kAllDTypes, plain,
             [](const Tensor& a, const Tensor& b) { return sub(a, b, 2); }),
      // In place, into a copy (not recorded by autograd).
      {.op = "add_inplace",
       .dtypes = kAllDTypes,
       .inputs = plain,
       .body = [](const Args& a) -> Tensors {
         Tensor out = a.in[0].clone();
         add_(out, a.in[1]);
         return {out};
       }},
      // Division into an integer tensor would need a float result: refused.
      {.op = "div_inplace",
       .dtypes = kFloats,
       .inputs = divisible,
       .body = [](const Args& a) -> Tensors {
         Tensor out = a.in[0].clone();
         div_(out, a.in[1]);
         return {out};
       }},
  };
}

// ---- where and clamp -----------------------------------------------------------------------

std::vector<Case> ternary_cases() {
  const Span any{-10, 10}, ints{-10, 10};
  const Inputs first = one(any, ints);
  auto where_inputs = [=](const Shape& cond, const Shape& a, const Shape& b) -> Inputs {
    return [=](DType dt) {
      return Tensors{values(cond, 3, kBool), values(a, 1, dt, any, ints),
                     values(b, 2, dt, any, ints)};
    };
  };
  auto where3 = [](const Tensor& c, const Tensor& a, const Tensor& b) { return where(c, a, b); };
  return {
      {.op = "where",
       .dtypes = kAllDTypes,
       .inputs = where_inputs(kShape, kShape, kShape),
       .body = ternary_op(where3),
       .grads = {1, 2}},
      {.op = "where_broadcast",
       .dtypes = kAllDTypes,
       .inputs = where_inputs({kShape[0], 1}, {kShape[1]}, kShape),
       .body = ternary_op(where3),
       .grad_precision = Precision::Accumulating,
       .grads = {1, 2}},
      unary("clamp", kNumeric, first, [](const Tensor& a) { return clamp(a, 2, 7); }),
      unary("clamp_min", kNumeric, first, [](const Tensor& a) { return clamp_min(a, 3); }),
      unary("clamp_max", kNumeric, first, [](const Tensor& a) { return clamp_max(a, 5); }),
      // Floating bounds make integer inputs float32.
      unary("clamp_float_bounds", kNumeric, first,
            [](const Tensor& a) { return clamp(a, 1.5, 6.5); }),
  };
}

// ---- casts, copies and fills ---------------------------------------------------------------

// A transposed view of every source dtype converted to `to`: the strided converting copy.
// Floating values that go to uint8 stay in its range (elsewhere the conversion is undefined).
Case cast_to(DType to) {
  const bool to_floating = is_floating(to);
  return {.op = std::string("to_") + dtype_name(to),
          .dtypes = kAllDTypes,
          .inputs =
              [to](DType from) {
                const Span floats = to == kUInt8 ? Span{0, 250} : Span{-100, 100};
                return Tensors{values({kShape[1], kShape[0]}, 1, from, floats, {-100, 100})};
              },
          .body = unary_op([to](const Tensor& x) { return x.t().to(to); }),
          .precision = Precision::Exact,
          .grads = to_floating ? std::vector<size_t>{0} : std::vector<size_t>{}};
}

Case copy(const char* op, UnaryFn view_and_copy) {
  return {.op = op,
          .dtypes = kAllDTypes,
          .inputs = one({-100, 100}, {-100, 100}),
          .body = unary_op(std::move(view_and_copy)),
          .precision = Precision::Exact,
          .grads = {0}};
}

Case fill(const char* op, std::function<Tensor(const TensorOptions&)> make) {
  return {.op = op,
          .dtypes = kAllDTypes,
          .body = [make](const Args& a) -> Tensors { return {make(a.options())}; },
          .precision = Precision::Exact};
}

std::vector<Case> copy_cases() {
  std::vector<Case> cases;
  for (DType to : kAllDTypes) cases.push_back(cast_to(to));
  const Shape t = {kShape[1], kShape[0]};
  cases.insert(
      cases.end(),
      {
          copy("contiguous_transposed", [](const Tensor& x) { return x.t().contiguous(); }),
          copy("contiguous_stepped",
               [](const Tensor& x) {
                 return x.slice(0, 1, 37, 3).slice(1, 2, 111, 2).contiguous();
               }),
          copy("contiguous_expanded",
               [](const Tensor& x) {
                 return x.unsqueeze(1).expand({37, 3, 111}).contiguous();
               }),
          copy("contiguous_permuted",
               [](const Tensor& x) {
                 return x.reshape({37, 3, 37}).permute({2, 0, 1}).contiguous();
               }),
          // Device -> host from a strided view, and back.
          {.op = "to_host_strided",
           .dtypes = kAllDTypes,
           .inputs = one({-100, 100}, {-100, 100}),
           .body = [](const Args& a) -> Tensors { return {a.in[0].t().to(kCPU).to(a.device)}; },
           .precision = Precision::Exact,
           .grads = {0}},
          // copy_ into a transposed destination (not recorded by autograd).
          {.op = "copy_into_transposed",
           .dtypes = kAllDTypes,
           .inputs = one({-100, 100}, {-100, 100}),
           .body = [t](const Args& a) -> Tensors {
             Tensor dst = Tensor::empty(t, a.in[0].options()).t();
             dst.copy_(a.in[0]);
             return {dst};
           },
           .precision = Precision::Exact},
          fill("full", [](const TensorOptions& o) { return full(kShape, 3, o); }),
          fill("full_fraction", [](const TensorOptions& o) { return full(kShape, 2.75, o); }),
          fill("eye", [](const TensorOptions& o) { return eye(kShape[0], kShape[1], o); }),
          fill("fill_transposed",
               [t](const TensorOptions& o) {
                 Tensor x = Tensor::empty(t, o).t();
                 x.fill_(5);
                 return x;
               }),
      });
  return cases;
}

std::vector<Case> all_cases() {
  std::vector<Case> all;
  for (auto family : {unary_cases, binary_cases, ternary_cases, copy_cases})
    for (Case& c : family()) all.push_back(std::move(c));
  return all;
}

class CudaSweepElementwise : public ::testing::TestWithParam<Param> {};

TEST_P(CudaSweepElementwise, CpuReference) { check_reference(GetParam()); }
TEST_P(CudaSweepElementwise, MatchesCpu) { check(GetParam()); }

INSTANTIATE_TEST_SUITE_P(, CudaSweepElementwise, ::testing::ValuesIn(params(all_cases())), name);

}  // namespace
