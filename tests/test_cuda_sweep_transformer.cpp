// The CUDA sweep of the Transformer ops against the CPU, every op x every dtype (see
// support/sweep.h): tril and triu (any dtype), masked_fill, apply_rotary, scaled dot-product
// attention (composed, and fused where CUDA has a kernel for the case: plain, causal, GQA, with
// a bool or an additive mask) and a language model's cross-entropy with ignored targets, with
// their gradients. Skipped without a GPU.
#include <functional>

#include "support/sweep.h"

using namespace anvil;
using namespace anvil::test::sweep;

namespace {

// ---- masks ---------------------------------------------------------------------------------

// A pick per element: exact, gradients too.
Case picking(const char* op, Inputs inputs, Body body) {
  return {.op = op,
          .dtypes = kAllDTypes,
          .inputs = std::move(inputs),
          .body = std::move(body),
          .precision = Precision::Exact,
          .grads = {0}};
}

Inputs one_input(Shape shape) {
  return [shape](DType dt) { return Tensors{values(shape, 1, dt)}; };
}

std::vector<Case> mask_cases() {
  return {
      picking("tril", one_input({3, 37, 41}), unary_op([](const Tensor& x) { return tril(x); })),
      picking("tril_above_diagonal", one_input({53, 29}),
              unary_op([](const Tensor& x) { return tril(x, 3); })),
      picking("triu", one_input({2, 3, 29, 53}), unary_op([](const Tensor& x) { return triu(x); })),
      picking("triu_below_diagonal", one_input({41, 37}),
              unary_op([](const Tensor& x) { return triu(x, -2); })),
      picking(
          "masked_fill",
          [](DType dt) {
            return Tensors{values({5, 37, 41}, 1, dt), values({37, 41}, 2, kBool)};
          },
          binary_op([](const Tensor& x, const Tensor& m) { return masked_fill(x, m, 3); })),
  };
}

// ---- rotary embedding ----------------------------------------------------------------------

// x [B, H, T, D] and cos/sin of `table` (broadcast to x), all of the swept dtype; the gradients
// of cos and sin sum over the broadcast dims.
Case rotary(const char* op, Shape x, Shape table, bool transposed = false) {
  return {.op = op,
          .dtypes = kFloats,
          .inputs =
              [=](DType dt) {
                return Tensors{values(x, 1, dt), values(table, 2, dt), values(table, 3, dt)};
              },
          .body = [transposed](const Args& a) -> Tensors {
            const Tensor x = transposed ? a.in[0].transpose(1, 2) : a.in[0];
            return {apply_rotary(x, a.in[1], a.in[2])};
          },
          .precision = Precision::Elementwise,
          .grad_precision = Precision::Accumulating,
          .grads = {0, 1, 2}};
}

std::vector<Case> rotary_cases() {
  return {
      rotary("apply_rotary", {2, 4, 37, 64}, {37, 64}),
      rotary("apply_rotary_per_sequence", {3, 2, 19, 16}, {3, 1, 19, 16}),
      // [B, T, H, D] viewed as [B, H, T, D]: a strided input.
      rotary("apply_rotary_transposed", {2, 37, 4, 32}, {37, 32}, true),
  };
}

// ---- attention -----------------------------------------------------------------------------

// q [2, 4, 37, 64], k and v [2, kv_heads, 45, 64], of the swept dtype, and `mask` when given.
// The fused kernel rounds the probabilities to the 16-bit dtype before the second product
// (and its backward the score gradients before theirs), which the composition does not:
// hence Approximate, the bound of such a 16-bit rounding inside a sum (float32 and float64
// keep Accumulating's bounds there).
Case attention(const char* op, int64_t kv_heads, std::function<Tensor(DType)> mask,
               std::function<Tensor(const Args&)> body) {
  return {.op = op,
          .dtypes = kFloats,
          .inputs =
              [=](DType dt) {
                Tensors in = {values({2, 4, 37, 64}, 1, dt), values({2, kv_heads, 45, 64}, 2, dt),
                              values({2, kv_heads, 45, 64}, 3, dt)};
                if (mask) in.push_back(mask(dt));
                return in;
              },
          .body = [body](const Args& a) -> Tensors { return {body(a)}; },
          .precision = Precision::Approximate,
          .grads = {0, 1, 2}};
}

Tensor sdpa(const Args& a, bool causal = false, bool gqa = false) {
  const Tensor mask = a.in.size() > 3 ? a.in[3] : Tensor();
  return scaled_dot_product_attention(a.in[0], a.in[1], a.in[2], mask, 0, causal, std::nullopt,
                                      gqa);
}

std::vector<Case> attention_cases() {
  const std::function<Tensor(DType)> none;
  return {
      attention("scaled_dot_product_attention", 4, none, [](const Args& a) { return sdpa(a); }),
      attention("scaled_dot_product_attention_causal", 4, none,
                [](const Args& a) { return sdpa(a, true); }),
      attention("scaled_dot_product_attention_gqa", 2, none,
                [](const Args& a) { return sdpa(a, true, true); }),
      attention(
          "scaled_dot_product_attention_bool_mask", 4,
          [](DType) {
            return values({37, 45}, 4, kBool);
          },
          [](const Args& a) { return sdpa(a); }),
      // The additive mask in the swept dtype (float32 with the integer dtypes, so that their
      // refusal comes from the query).
      attention(
          "scaled_dot_product_attention_additive_mask", 4,
          [](DType dt) {
            return values({2, 1, 37, 45}, 4, is_floating(dt) ? dt : kFloat32);
          },
          [](const Args& a) { return sdpa(a); }),
  };
}

// ---- language-model loss -------------------------------------------------------------------

// Targets in [0, vocab) with every seventh one ignored (-100).
Tensor lm_targets(int64_t n, int64_t vocab) {
  std::vector<int64_t> t = integers({n}, 2, kInt64, 0, vocab).to_vector<int64_t>();
  for (size_t i = 0; i < t.size(); i += 7) t[i] = -100;
  return tensor(t);
}

// Logits [B * T, V] (V larger than a block) against lm_targets.
std::vector<Case> lm_loss_cases() {
  return {{.op = "cross_entropy_lm_ignore_index",
           .dtypes = kFloats,
           .inputs =
               [](DType dt) {
                 return Tensors{values({4 * 37, 5003}, 1, dt, {-4, 4}), lm_targets(4 * 37, 5003)};
               },
           .body = binary_op([](const Tensor& x, const Tensor& t) { return cross_entropy(x, t); }),
           .precision = Precision::Accumulating,
           .grads = {0}}};
}

std::vector<Case> all_cases() {
  std::vector<Case> all;
  for (auto family : {mask_cases, rotary_cases, attention_cases, lm_loss_cases})
    for (Case& c : family()) all.push_back(std::move(c));
  return all;
}

class CudaSweepTransformer : public ::testing::TestWithParam<Param> {};

TEST_P(CudaSweepTransformer, CpuReference) { check_reference(GetParam()); }
TEST_P(CudaSweepTransformer, MatchesCpu) { check(GetParam()); }

INSTANTIATE_TEST_SUITE_P(, CudaSweepTransformer, ::testing::ValuesIn(params(all_cases())), name);

}  // namespace
