// scaled_dot_product_attention on the CPU (always the composed path): agreement with
// torch.nn.functional.scaled_dot_product_attention (ranks, odd sizes, causal, masks, scale,
// GQA, strided inputs, 16-bit), fully masked rows, float64 gradient checks, dropout drawn as
// dropout() draws it, autocast, and bad input.
#include <cmath>

#include "support/check.h"

using namespace anvil;

namespace {

Tensor f32(const Shape& shape, uint64_t seed) {
  return test::uniform(shape, seed, -1, 1, kFloat32);
}
Tensor bools(const Shape& shape, uint64_t seed, double p_true = 0.6) {
  return lt(test::uniform(shape, seed, 0, 1), p_true);
}

// torch's call with the inputs a, b, c (and d, the mask, when given) and these keyword arguments.
std::string torch_sdpa(const std::string& kwargs = "", bool mask = false) {
  std::string e = "F.scaled_dot_product_attention(a, b, c";
  if (mask) e += ", attn_mask=d";
  if (!kwargs.empty()) e += ", " + kwargs;
  return e + ")";
}

struct Options {
  bool causal = false;
  std::optional<double> scale = std::nullopt;
  bool gqa = false;
};

test::Fn sdpa(Options o = {}) {
  return [o](const std::vector<Tensor>& a) {
    Tensor mask = a.size() > 3 ? a[3] : Tensor();
    return scaled_dot_product_attention(a[0], a[1], a[2], mask, 0.0, o.causal, o.scale, o.gqa);
  };
}

// The attention weights a test composes by hand: softmax(q k^T * scale) in the inputs' dtype.
Tensor weights(const Tensor& q, const Tensor& k, double scale) {
  return softmax(mul(matmul(q, k.transpose(-2, -1)), scale), -1);
}

}  // namespace

TEST(Attention, MatchesTorch) {
  struct Case {
    std::string what;
    std::vector<Tensor> in;
    std::string kwargs;
    Options opts;
  };
  const Tensor q4 = f32({2, 3, 7, 3}, 1), k4 = f32({2, 3, 5, 3}, 2), v4 = f32({2, 3, 5, 4}, 3);
  std::vector<Case> cases = {
      {"3-D, L=7 S=5 E=3 Ev=4", {f32({2, 7, 3}, 4), f32({2, 5, 3}, 5), f32({2, 5, 4}, 6)}, "", {}},
      {"4-D", {q4, k4, v4}, "", {}},
      {"2-D", {f32({7, 3}, 7), f32({5, 3}, 8), f32({5, 4}, 9)}, "", {}},
      {"causal L > S", {q4, k4, v4}, "is_causal=True", {.causal = true}},
      {"causal L < S",
       {f32({2, 3, 5, 3}, 10), f32({2, 3, 7, 3}, 11), f32({2, 3, 7, 4}, 12)},
       "is_causal=True",
       {.causal = true}},
      {"scale", {q4, k4, v4}, "scale=0.3", {.scale = 0.3}},
      {"causal with scale",
       {q4, k4, v4},
       "is_causal=True, scale=2.5",
       {.causal = true, .scale = 2.5}},
      {"GQA 6 query heads on 2 kv heads",
       {f32({2, 6, 7, 4}, 13), f32({2, 2, 5, 4}, 14), f32({2, 2, 5, 3}, 15)},
       "enable_gqa=True",
       {.gqa = true}},
      {"GQA causal, 3-D heads",
       {f32({4, 7, 4}, 16), f32({2, 7, 4}, 17), f32({2, 7, 4}, 18)},
       "enable_gqa=True, is_causal=True",
       {.causal = true, .gqa = true}},
      {"one kv head broadcast", {q4, f32({2, 1, 5, 3}, 19), f32({2, 1, 5, 4}, 20)}, "", {}},
      {"batch dims broadcast",
       {f32({2, 3, 7, 3}, 21), f32({1, 3, 5, 3}, 22), f32({1, 3, 5, 4}, 23)},
       "",
       {}},
      // q, k, v as [B, T, H, D] tensors viewed as [B, H, T, D], as a Transformer makes them.
      {"transposed from [B, T, H, D]",
       {f32({2, 7, 3, 8}, 24).transpose(1, 2), f32({2, 9, 3, 8}, 25).transpose(1, 2),
        f32({2, 9, 3, 8}, 26).transpose(1, 2)},
       "is_causal=True",
       {.causal = true}},
      {"strided slices",
       {f32({2, 3, 7, 6}, 27).slice(3, 0, 6, 2), f32({2, 3, 10, 3}, 28).slice(2, 0, 10, 2),
        f32({2, 3, 5, 8}, 29).slice(3, 1, 8, 2)},
       "",
       {}},
      {"larger",
       {f32({2, 4, 33, 16}, 30), f32({2, 4, 40, 16}, 31), f32({2, 4, 40, 16}, 32)},
       "",
       {}},
      {"float64",
       {test::uniform({2, 2, 7, 3}, 33), test::uniform({2, 2, 5, 3}, 34),
        test::uniform({2, 2, 5, 4}, 35)},
       "is_causal=True",
       {.causal = true}},
  };
  for (auto& c : cases)
    EXPECT_TRUE(test::matches_torch(torch_sdpa(c.kwargs), c.in, sdpa(c.opts))) << c.what;
}

TEST(Attention, MasksMatchTorch) {
  const Tensor q = f32({2, 3, 7, 3}, 1), k = f32({2, 3, 5, 3}, 2), v = f32({2, 3, 5, 4}, 3);
  const std::vector<Tensor> masks = {
      bools({7, 5}, 4),                                 // bool [L, S]
      bools({2, 1, 7, 5}, 5),                           // bool [N, 1, L, S]
      test::uniform({7, 5}, 6, -2, 2, kFloat32),        // additive [L, S]
      test::uniform({2, 1, 7, 5}, 7, -2, 2, kFloat32),  // additive [N, 1, L, S]
      test::uniform({5}, 8, -2, 2, kFloat32),           // additive, broadcast over queries
      test::uniform({2, 1, 5, 7}, 9, -2, 2, kFloat32).transpose(-2, -1),  // a strided mask
  };
  for (const Tensor& m : masks)
    EXPECT_TRUE(test::matches_torch(torch_sdpa("", true), {q, k, v, m}, sdpa()))
        << dtype_name(m.dtype()) << " mask " << to_string(m.shape());
  // With GQA and a scale.
  EXPECT_TRUE(test::matches_torch(torch_sdpa("enable_gqa=True, scale=0.7", true),
                                  {f32({2, 4, 7, 3}, 10), f32({2, 2, 5, 3}, 11),
                                   f32({2, 2, 5, 4}, 12), bools({2, 4, 7, 5}, 13)},
                                  sdpa({.scale = 0.7, .gqa = true})));
}

TEST(Attention, FullyMaskedRowsGiveZeros) {
  // Rows 1 and 4 of the mask let no key through; torch 2.15 gives zeros there (and zero
  // gradients), not NaN. Both mask kinds, the additive one with -inf.
  std::vector<bool> keep(7 * 5, true);
  for (int j = 0; j < 5; ++j) keep[size_t(1 * 5 + j)] = keep[size_t(4 * 5 + j)] = false;
  keep[size_t(2 * 5 + 3)] = false;
  Tensor bool_mask = tensor(keep, {7, 5});
  Tensor add_mask = where(bool_mask, zeros({}), full({}, -INFINITY));
  const Tensor q = f32({2, 3, 7, 3}, 1), k = f32({2, 3, 5, 3}, 2), v = f32({2, 3, 5, 4}, 3);
  for (const Tensor& m : {bool_mask, add_mask}) {
    Tensor ql = q.detach().requires_grad_(), kl = k.detach().requires_grad_();
    Tensor out = scaled_dot_product_attention(ql, kl, v, m);
    EXPECT_TRUE(test::all_close(out.select(2, 1), zeros({2, 3, 4}), 0, 0));
    EXPECT_TRUE(test::all_close(out.select(2, 4), zeros({2, 3, 4}), 0, 0));
    sum(mul(out, f32(out.shape(), 4))).backward();
    EXPECT_TRUE(test::all_close(ql.grad().select(2, 1), zeros({2, 3, 3}), 0, 0));
    EXPECT_EQ(sum(isnan(kl.grad())).item<int64_t>(), 0);
    // torch itself (the mask is not differentiated: -inf entries have no finite difference).
    EXPECT_TRUE(test::matches_torch(
        "F.scaled_dot_product_attention(a, b, c, attn_mask=d.detach())", {q, k, v, m},
        [](auto& a) { return scaled_dot_product_attention(a[0], a[1], a[2], a[3].detach()); }))
        << dtype_name(m.dtype());
  }
}

TEST(Attention, HalfPrecisionMatchesTorch) {
  // torch's math path computes 16-bit inputs in float32 and rounds once; so do we.
  for (DType dt : {kBFloat16, kFloat16}) {
    auto h = [dt](const Shape& s, uint64_t seed) { return test::uniform(s, seed, -1, 1, dt); };
    const test::TorchTolerance tol{2e-2, 2e-2};
    EXPECT_TRUE(test::matches_torch(
        torch_sdpa(), {h({2, 3, 7, 8}, 1), h({2, 3, 5, 8}, 2), h({2, 3, 5, 4}, 3)}, sdpa(), tol))
        << dtype_name(dt);
    EXPECT_TRUE(test::matches_torch(torch_sdpa("is_causal=True, enable_gqa=True"),
                                    {h({2, 4, 9, 16}, 4), h({2, 2, 9, 16}, 5), h({2, 2, 9, 16}, 6)},
                                    sdpa({.causal = true, .gqa = true}), tol))
        << dtype_name(dt);
    // A float32 additive mask with 16-bit inputs, as torch allows.
    EXPECT_TRUE(test::matches_torch(torch_sdpa("", true),
                                    {h({2, 3, 7, 8}, 7), h({2, 3, 5, 8}, 8), h({2, 3, 5, 8}, 9),
                                     test::uniform({7, 5}, 10, -1, 1, kFloat32)},
                                    sdpa(), tol))
        << dtype_name(dt);
  }
  // The rounding happens once, at the end: the result is the float32 result rounded.
  Tensor q = test::uniform({2, 3, 17, 16}, 11, -1, 1, kBFloat16);
  Tensor k = test::uniform({2, 3, 19, 16}, 12, -1, 1, kBFloat16);
  Tensor v = test::uniform({2, 3, 19, 16}, 13, -1, 1, kBFloat16);
  Tensor out = scaled_dot_product_attention(q, k, v);
  EXPECT_EQ(out.dtype(), kBFloat16);
  Tensor wide = scaled_dot_product_attention(q.to(kFloat32), k.to(kFloat32), v.to(kFloat32));
  EXPECT_TRUE(test::all_close(out, wide.to(kBFloat16), 0, 0));
}

TEST(Attention, Gradcheck) {
  auto u = [](const Shape& s, uint64_t seed) {
    return test::uniform(s, seed, -1, 1).requires_grad_();
  };
  EXPECT_TRUE(
      test::gradcheck(sdpa(), {u({2, 2, 4, 3}, 1), u({2, 2, 5, 3}, 2), u({2, 2, 5, 2}, 3)}));
  EXPECT_TRUE(test::gradcheck(sdpa({.causal = true, .scale = 0.8}),
                              {u({2, 5, 3}, 4), u({2, 4, 3}, 5), u({2, 4, 2}, 6)}));
  EXPECT_TRUE(test::gradcheck(sdpa({.gqa = true}),
                              {u({1, 4, 3, 2}, 7), u({1, 2, 5, 2}, 8), u({1, 2, 5, 3}, 9)}));
  // An additive mask, differentiated too, broadcast over the batch and heads.
  EXPECT_TRUE(test::gradcheck(
      sdpa(), {u({2, 2, 4, 3}, 10), u({2, 2, 5, 3}, 11), u({2, 2, 5, 2}, 12), u({4, 5}, 13)}));
  // A bool mask with a fully masked row: finite (zero) gradients through it.
  std::vector<bool> keep = {true, false, true,  true, false, false, false, false, false, false,
                            true, true,  false, true, true,  false, true,  true,  true,  true};
  Tensor m = tensor(keep, {4, 5});
  EXPECT_TRUE(
      test::gradcheck([m](auto& a) { return scaled_dot_product_attention(a[0], a[1], a[2], m); },
                      {u({2, 4, 3}, 14), u({2, 5, 3}, 15), u({2, 5, 2}, 16)}));
}

TEST(Attention, DropoutDrawsAsDropoutDoes) {
  // With the same generator state, the op equals dropout(softmax(q k^T * scale)) @ v composed
  // by hand, and leaves the generator where the composition leaves it.
  const double p = 0.3;
  Tensor q = test::uniform({2, 3, 7, 4}, 1), k = test::uniform({2, 3, 9, 4}, 2),
         v = test::uniform({2, 3, 9, 5}, 3);
  manual_seed(123);
  Tensor out = scaled_dot_product_attention(q, k, v, {}, p);
  const uint64_t after_op = default_generator().offset();
  manual_seed(123);
  Tensor want = matmul(dropout(weights(q, k, 0.5), p), v);
  EXPECT_EQ(default_generator().offset(), after_op);
  EXPECT_TRUE(test::all_close(out, want, 1e-12, 1e-14));
  // Some probabilities were dropped: the result differs from the one without dropout.
  EXPECT_FALSE(test::all_close(out, scaled_dot_product_attention(q, k, v), 1e-3, 1e-3));
  // A second call draws fresh elements.
  EXPECT_FALSE(test::all_close(scaled_dot_product_attention(q, k, v, {}, p), out, 1e-3, 1e-3));

  // GQA: the kv heads repeated per query head, then the same composition.
  Tensor qg = test::uniform({2, 4, 5, 3}, 4), kg = test::uniform({2, 2, 6, 3}, 5),
         vg = test::uniform({2, 2, 6, 3}, 6);
  manual_seed(7);
  Tensor gqa = scaled_dot_product_attention(qg, kg, vg, {}, p, false, 0.9, true);
  Tensor index = tensor(std::vector<int64_t>{0, 0, 1, 1});
  manual_seed(7);
  Tensor gqa_want =
      matmul(dropout(weights(qg, index_select(kg, 1, index), 0.9), p), index_select(vg, 1, index));
  EXPECT_TRUE(test::all_close(gqa, gqa_want, 1e-12, 1e-14));

  // The gradient, for a fixed seed, is that of the same function of q, k and v.
  auto u = [](const Shape& s, uint64_t seed) {
    return test::uniform(s, seed, -1, 1).requires_grad_();
  };
  EXPECT_TRUE(test::gradcheck(
      [](auto& a) {
        manual_seed(99);
        return scaled_dot_product_attention(a[0], a[1], a[2], {}, 0.4, true);
      },
      {u({2, 2, 4, 3}, 7), u({2, 2, 5, 3}, 8), u({2, 2, 5, 2}, 9)}));
  // p == 1 drops everything and draws nothing, as dropout() does.
  const uint64_t before = default_generator().offset();
  EXPECT_TRUE(test::all_close(scaled_dot_product_attention(q, k, v, {}, 1.0),
                              zeros({2, 3, 7, 5}, kFloat64), 0, 0));
  EXPECT_EQ(default_generator().offset(), before);
}

TEST(Attention, Autocast) {
  // On the lower-precision list: float32 inputs run in the autocast dtype.
  Tensor q = f32({2, 2, 5, 8}, 1), k = f32({2, 2, 6, 8}, 2), v = f32({2, 2, 6, 8}, 3);
  Tensor out;
  {
    amp::autocast ac(DeviceKind::CPU, kBFloat16);
    out = scaled_dot_product_attention(q, k, v, f32({5, 6}, 4));
  }
  EXPECT_EQ(out.dtype(), kBFloat16);
  Tensor want = scaled_dot_product_attention(q.to(kBFloat16), k.to(kBFloat16), v.to(kBFloat16),
                                             f32({5, 6}, 4).to(kBFloat16));
  EXPECT_TRUE(test::all_close(out, want, 0, 0));
}

TEST(Attention, EmptyKeys) {
  // No keys: every row is an empty sum, zeros as torch's math path gives.
  Tensor out = scaled_dot_product_attention(f32({2, 3, 4}, 1), zeros({2, 0, 4}), zeros({2, 0, 5}));
  EXPECT_EQ(out.shape(), (Shape{2, 3, 5}));
  EXPECT_TRUE(test::all_close(out, zeros({2, 3, 5}), 0, 0));
  EXPECT_EQ(
      scaled_dot_product_attention(zeros({2, 0, 4}), zeros({2, 3, 4}), zeros({2, 3, 5})).shape(),
      (Shape{2, 0, 5}));
}

TEST(Attention, BadInput) {
  const Tensor q = zeros({2, 4, 7, 3}), k = zeros({2, 4, 5, 3}), v = zeros({2, 4, 5, 6});
  const char* op = "scaled_dot_product_attention";
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] { scaled_dot_product_attention(q.to(kInt64), k.to(kInt64), v.to(kInt64)); },
      {op, "floating-point", "int64"}));
  EXPECT_TRUE(
      test::throws_with<DTypeError>([&] { scaled_dot_product_attention(q, k.to(kFloat64), v); },
                                    {op, "one dtype", "float32, float64 and float32"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        scaled_dot_product_attention(q, zeros({2, 4, 5, 4}), v);
      },
      {op, "embedding size E = 3", "[2, 4, 5, 4]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        scaled_dot_product_attention(q, k, zeros({2, 4, 6, 6}));
      },
      {op, "sequence length S = 5", "[2, 4, 6, 6]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        scaled_dot_product_attention(q, zeros({4, 5, 3}), zeros({4, 5, 6}));
      },
      {op, "one rank", "[2, 4, 7, 3]", "[4, 5, 3]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] { scaled_dot_product_attention(zeros({3}), zeros({3}), zeros({3})); },
      {op, "at least 2", "[3]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        scaled_dot_product_attention(q, zeros({2, 3, 5, 3}), zeros({2, 3, 5, 6}), {}, 0, false,
                                     std::nullopt, true);
      },
      {op, "enable_gqa", "H = 4", "Hkv = 3"}));
  // Without enable_gqa, unequal head counts must broadcast.
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        scaled_dot_product_attention(q, zeros({2, 2, 5, 3}), zeros({2, 2, 5, 6}));
      },
      {op, "do not broadcast", "4 vs 2"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        scaled_dot_product_attention(q, k, zeros({3, 4, 5, 6}));
      },
      {op, "same batch dims", "[3, 4, 5, 6]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        scaled_dot_product_attention(q, k, v, zeros({7, 6}));
      },
      {op, "broadcastable to the scores' shape [2, 4, 7, 5]", "[7, 6]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        scaled_dot_product_attention(q, k, v, zeros({1, 2, 4, 7, 5}));
      },
      {op, "scores' shape", "[1, 2, 4, 7, 5]"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] {
        scaled_dot_product_attention(q, k, v, zeros({7, 5}, kInt64));
      },
      {op, "bool, float32 or query's dtype float32", "int64"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] {
        scaled_dot_product_attention(q, k, v, zeros({7, 5}, kFloat64));
      },
      {op, "attn_mask", "float64"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        scaled_dot_product_attention(q, k, v, ones({7, 5}, kBool), 0, true);
      },
      {op, "attn_mask or is_causal", "both"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { scaled_dot_product_attention(q, k, v, {}, 1.5); },
                                            {op, "dropout_p in [0, 1]", "1.5"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { scaled_dot_product_attention(Tensor(), k, v); },
                                            {op, "query"}));
}
