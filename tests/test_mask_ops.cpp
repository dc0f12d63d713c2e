// tril, triu, masked_fill, apply_rotary and rotary_cos_sin: values, gradients, agreement with
// PyTorch (and Hugging Face's rotary embedding) and bad input.
#include <cmath>

#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;

namespace {
Tensor f32(const Shape& shape, uint64_t seed) {
  return test::uniform(shape, seed, -1, 1, kFloat32);
}
Tensor bools(const Shape& shape, uint64_t seed) { return gt(test::uniform(shape, seed), 0.0); }
}  // namespace

// ---- tril / triu ----

TEST(Triangle, Values) {
  Tensor x = arange(1, 13, 1, kFloat32).reshape({3, 4});
  EXPECT_TRUE(test::all_close(
      tril(x), tensor(std::vector<float>{1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0}, {3, 4}), 0, 0));
  EXPECT_TRUE(test::all_close(
      triu(x), tensor(std::vector<float>{1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12}, {3, 4}), 0, 0));
  EXPECT_TRUE(test::all_close(
      tril(x, 1), tensor(std::vector<float>{1, 2, 0, 0, 5, 6, 7, 0, 9, 10, 11, 12}, {3, 4}), 0, 0));
  EXPECT_TRUE(test::all_close(
      triu(x, -1), tensor(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 0, 10, 11, 12}, {3, 4}), 0,
      0));
  // Diagonals past either corner keep everything or nothing.
  EXPECT_TRUE(test::all_close(tril(x, 10), x, 0, 0));
  EXPECT_TRUE(test::all_close(tril(x, -10), zeros({3, 4}), 0, 0));
  EXPECT_TRUE(test::all_close(triu(x, 10), zeros({3, 4}), 0, 0));
  EXPECT_TRUE(test::all_close(triu(x, -10), x, 0, 0));
  // The causal mask attention builds: bool, any batch dims.
  Tensor causal = tril(ones({2, 3, 3}, kBool));
  EXPECT_EQ(causal.dtype(), kBool);
  EXPECT_EQ(causal.to(kInt64).to_vector<int64_t>(),
            (std::vector<int64_t>{1, 0, 0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1}));
  EXPECT_EQ(tril(zeros({0, 3})).shape(), (Shape{0, 3}));
  EXPECT_EQ(triu(zeros({2, 3, 0})).shape(), (Shape{2, 3, 0}));
}

TEST(Triangle, Gradcheck) {
  Tensor x = test::uniform({2, 4, 5}, 1).requires_grad_();
  for (int64_t d : {-2, 0, 1, 3}) {
    EXPECT_TRUE(test::gradcheck([d](auto& a) { return tril(a[0], d); }, {x})) << d;
    EXPECT_TRUE(test::gradcheck([d](auto& a) { return triu(a[0], d); }, {x})) << d;
  }
}

TEST(Triangle, MatchesTorch) {
  struct Case {
    Tensor x;
    int64_t diagonal;
  };
  std::vector<Case> cases = {
      {f32({5, 7}, 1), 0},
      {f32({7, 5}, 2), 2},
      {f32({2, 3, 6, 4}, 3), -1},
      {f32({4, 6}, 4).t(), 1},                            // transposed
      {f32({3, 8, 9}, 5).slice(2, 1, 9, 2), -2},          // strided
      {f32({300, 257}, 6), 5},                            // large enough for threads
      {test::uniform({4, 5}, 7, -50, 50).to(kInt64), 0},  // integers
      {bools({3, 4, 4}, 8), 1},
  };
  for (auto& c : cases) {
    const int64_t d = c.diagonal;
    const std::string ds = std::to_string(d);
    EXPECT_TRUE(test::matches_torch("torch.tril(a, " + ds + ")", {c.x},
                                    [d](auto& a) { return tril(a[0], d); }))
        << to_string(c.x.shape()) << " " << d;
    EXPECT_TRUE(test::matches_torch("torch.triu(a, " + ds + ")", {c.x},
                                    [d](auto& a) { return triu(a[0], d); }))
        << to_string(c.x.shape()) << " " << d;
  }
}

TEST(Triangle, BadInput) {
  EXPECT_TRUE(
      test::throws_with<ShapeError>([] { tril(zeros({4})); }, {"tril", "at least 2 dims", "[4]"}));
  EXPECT_TRUE(
      test::throws_with<ShapeError>([] { triu(zeros({})); }, {"triu", "at least 2 dims", "[]"}));
}

// ---- masked_fill ----

TEST(MaskedFill, Values) {
  Tensor x = tensor(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor m = tensor(std::vector<bool>{true, false, true}, {3});
  EXPECT_TRUE(test::all_close(masked_fill(x, m, -1.5),
                              tensor(std::vector<float>{-1.5, 2, -1.5, -1.5, 5, -1.5}, {2, 3}), 0,
                              0));
  Tensor inf = masked_fill(x, m, -INFINITY);
  EXPECT_EQ(inf.to_vector<float>()[0], -INFINITY);
  // An integer tensor truncates a floating value, as torch does; the dtype stays.
  Tensor ints = masked_fill(zeros({3}, kInt64), m, 2.7);
  EXPECT_EQ(ints.dtype(), kInt64);
  EXPECT_EQ(ints.to_vector<int64_t>(), (std::vector<int64_t>{2, 0, 2}));
  // The mask may have more dims than x: the result has the broadcast shape.
  EXPECT_EQ(masked_fill(zeros({3}), ones({2, 3}, kBool), 1.0).shape(), (Shape{2, 3}));
}

TEST(MaskedFill, Gradcheck) {
  Tensor x = test::uniform({3, 4, 5}, 2).requires_grad_();
  Tensor m = bools({4, 5}, 3);
  EXPECT_TRUE(test::gradcheck([m](auto& a) { return masked_fill(a[0], m, 7.0); }, {x}));
  // A mask broadcast up past x: the gradient sums back to x's shape.
  Tensor small = test::uniform({5}, 4).requires_grad_();
  EXPECT_TRUE(test::gradcheck([m](auto& a) { return masked_fill(a[0], m, -2.0); }, {small}));
}

TEST(MaskedFill, MatchesTorch) {
  EXPECT_TRUE(test::matches_torch("torch.masked_fill(a, b, -3.25)",
                                  {f32({2, 5, 7}, 5), bools({5, 7}, 6)},
                                  [](auto& a) { return masked_fill(a[0], a[1], -3.25); }));
  EXPECT_TRUE(test::matches_torch("torch.masked_fill(a, b, -1e9)",
                                  {f32({6, 4}, 7).t(), bools({2, 4, 6}, 8).select(0, 1)},
                                  [](auto& a) { return masked_fill(a[0], a[1], -1e9); }));
  EXPECT_TRUE(test::matches_torch("torch.masked_fill(a, b, 0.5)", {f32({7}, 9), bools({3, 7}, 10)},
                                  [](auto& a) { return masked_fill(a[0], a[1], 0.5); }));
  EXPECT_TRUE(test::matches_torch("torch.masked_fill(a, b, 3)",
                                  {test::uniform({4, 5}, 11, -9, 9).to(kInt32), bools({4, 1}, 12)},
                                  [](auto& a) { return masked_fill(a[0], a[1], 3); }));
  EXPECT_TRUE(test::matches_torch("torch.masked_fill(a, b, -1e4)",
                                  {test::uniform({3, 9}, 13, -1, 1, kBFloat16), bools({9}, 14)},
                                  [](auto& a) { return masked_fill(a[0], a[1], -1e4); }));
}

TEST(MaskedFill, BadInput) {
  EXPECT_TRUE(test::throws_with<DTypeError>([] { masked_fill(zeros({3}), ones({3}, kInt32), 1.0); },
                                            {"masked_fill", "bool", "int32"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [] {
        masked_fill(zeros({2, 3}), ones({4}, kBool), 1.0);
      },
      {"masked_fill", "[2, 3]", "[4]"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { masked_fill(zeros({3}), Tensor(), 1.0); },
                                            {"masked_fill", "mask"}));
}

// ---- apply_rotary ----

namespace {
// Hugging Face's apply_rotary_pos_emb for one tensor, written out in torch.
const char* kHfRotary =
    "a * b + torch.cat((-a[..., a.shape[-1] // 2:], a[..., :a.shape[-1] // 2]), -1) * c";
Tensor rotary(const std::vector<Tensor>& a) { return apply_rotary(a[0], a[1], a[2]); }
}  // namespace

TEST(Rotary, Values) {
  // D = 4: pairs (x0, x2) and (x1, x3), each rotated by its own angle.
  Tensor x = tensor(std::vector<double>{1, 2, 3, 4}, {1, 4});
  Tensor cos = tensor(std::vector<double>{0.5, 0.25, 0.75, 1.0}, {1, 4});
  Tensor sin = tensor(std::vector<double>{0.1, 0.2, 0.3, 0.4}, {1, 4});
  // out = x * cos + (-x2, -x3, x0, x1) * sin
  Tensor want = tensor(std::vector<double>{1 * 0.5 - 3 * 0.1, 2 * 0.25 - 4 * 0.2,
                                           3 * 0.75 + 1 * 0.3, 4 * 1.0 + 2 * 0.4},
                       {1, 4});
  EXPECT_TRUE(test::all_close(apply_rotary(x, cos, sin), want, 1e-15, 1e-15));
  // Angle 0 at position 0 leaves x alone; a rotation keeps each pair's norm.
  auto [c, s] = rotary_cos_sin(6, 8, 10000.0, kFloat64);
  Tensor v = test::uniform({2, 3, 6, 8}, 1);
  Tensor r = apply_rotary(v, c, s);
  EXPECT_TRUE(test::all_close(r.select(2, 0), v.select(2, 0), 0, 0));
  Tensor pair_norms = add(square(r.narrow(-1, 0, 4)), square(r.narrow(-1, 4, 4)));
  EXPECT_TRUE(test::all_close(
      pair_norms, add(square(v.narrow(-1, 0, 4)), square(v.narrow(-1, 4, 4))), 1e-12, 1e-12));
}

TEST(Rotary, Gradcheck) {
  auto [c, s] = rotary_cos_sin(5, 6, 100.0, kFloat64);
  Tensor x = test::uniform({2, 3, 5, 6}, 2).requires_grad_();
  EXPECT_TRUE(test::gradcheck([c, s](auto& a) { return apply_rotary(a[0], c, s); }, {x}));
  // cos and sin that require grad (broadcast over batch and heads) get theirs too.
  Tensor cg = test::uniform({5, 6}, 3).requires_grad_(),
         sg = test::uniform({5, 6}, 4).requires_grad_();
  EXPECT_TRUE(test::gradcheck(rotary, {x, cg, sg}));
  Tensor per_seq = test::uniform({2, 1, 5, 6}, 5).requires_grad_();
  EXPECT_TRUE(test::gradcheck(rotary, {x, per_seq, sg}));
}

TEST(Rotary, MatchesTorch) {
  struct Case {
    Tensor x, cos, sin;
    test::TorchTolerance tol;
  };
  auto tables = [](int64_t t, int64_t d, DType dt) {
    auto cs = rotary_cos_sin(t, d, 10000.0, dt);
    return std::pair{cs.cos, cs.sin};
  };
  auto [c1, s1] = tables(5, 8, kFloat32);
  auto [c2, s2] = tables(7, 6, kFloat32);
  auto [c3, s3] = tables(9, 16, kBFloat16);
  std::vector<Case> cases = {
      {f32({2, 3, 5, 8}, 1), c1, s1, {}},
      {f32({7, 6}, 2), c2, s2, {}},                        // [T, D] alone
      {f32({2, 7, 4, 6}, 3).transpose(1, 2), c2, s2, {}},  // [B, T, H, D] viewed as [B, H, T, D]
      {f32({2, 4, 7, 6}, 4),
       f32({2, 1, 7, 6}, 5),
       f32({2, 1, 7, 6}, 6),
       {}},  // per-sequence tables
      {f32({3, 7, 1}, 7).expand({3, 7, 6}), f32({7, 6}, 8), f32({7, 6}, 9), {}},  // stride-0 input
      {f32({64, 33, 16}, 10), f32({33, 16}, 11), f32({33, 16}, 12), {}},  // enough rows for threads
      {test::uniform({2, 2, 9, 16}, 13, -1, 1, kBFloat16), c3, s3, {1e-2, 1e-2}},
  };
  for (auto& c : cases)
    EXPECT_TRUE(test::matches_torch(kHfRotary, {c.x, c.cos, c.sin}, rotary, c.tol))
        << to_string(c.x.shape()) << " with tables " << to_string(c.cos.shape());
}

TEST(Rotary, MatchesHuggingFace) {
  // Tables from LlamaRotaryEmbedding and q, k through apply_rotary_pos_emb themselves.
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  const int64_t t = 37, d = 32;
  const double base = 500000.0;
  Tensor q = f32({2, 4, t, d}, 20), k = f32({2, 2, t, d}, 21);
  auto want = oracle.run_code(
      "from transformers import LlamaConfig\n"
      "from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, "
      "apply_rotary_pos_emb\n"
      "cfg = LlamaConfig(hidden_size=128, num_attention_heads=4, rope_theta=500000.0)\n"
      "cos, sin = LlamaRotaryEmbedding(cfg)(a, torch.arange(37)[None])\n"
      "qe, ke = apply_rotary_pos_emb(a, b, cos, sin)\n"
      "out = [cos[0], sin[0], qe, ke]",
      {q, k});
  ASSERT_EQ(want.size(), 4u);
  auto [cos, sin] = rotary_cos_sin(t, d, base);
  EXPECT_TRUE(test::all_close(cos, want[0], 1e-6, 1e-6));
  EXPECT_TRUE(test::all_close(sin, want[1], 1e-6, 1e-6));
  EXPECT_TRUE(test::all_close(apply_rotary(q, cos, sin), want[2], 1e-5, 1e-6));
  EXPECT_TRUE(test::all_close(apply_rotary(k, cos, sin), want[3], 1e-5, 1e-6));
}

TEST(Rotary, CosSinTables) {
  auto [c, s] = rotary_cos_sin(4, 6, 10000.0);
  EXPECT_EQ(c.shape(), (Shape{4, 6}));
  EXPECT_EQ(c.dtype(), kFloat32);
  // Position 1: angles 1, 10000^(-1/3), 10000^(-2/3), repeated for the second half.
  auto cv = c.to_vector<float>(), sv = s.to_vector<float>();
  const double a[] = {1.0, std::pow(10000.0, -1.0 / 3), std::pow(10000.0, -2.0 / 3)};
  for (int i = 0; i < 6; ++i) {
    EXPECT_NEAR(cv[size_t(6 + i)], std::cos(a[i % 3]), 1e-6) << i;
    EXPECT_NEAR(sv[size_t(6 + i)], std::sin(a[i % 3]), 1e-6) << i;
  }
  auto [h, hs] = rotary_cos_sin(3, 4, 10.0, TensorOptions(kFloat16));
  EXPECT_EQ(h.dtype(), kFloat16);
  EXPECT_EQ(hs.dtype(), kFloat16);
  EXPECT_EQ(rotary_cos_sin(0, 4).cos.shape(), (Shape{0, 4}));
}

TEST(Rotary, BadInput) {
  Tensor c = ones({5, 8}), s = zeros({5, 8});
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        apply_rotary(zeros({5, 7}), c, s);
      },
      {"apply_rotary", "even D", "[5, 7]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        apply_rotary(zeros({2, 6, 8}), c, s);
      },
      {"apply_rotary", "cos", "[2, 6, 8]", "[5, 8]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        apply_rotary(zeros({5, 8}), c, zeros({2, 5, 8}));
      },
      {"apply_rotary", "sin", "[5, 8]", "[2, 5, 8]"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] {
        apply_rotary(zeros({5, 8}, kFloat64), c, s);
      },
      {"apply_rotary", "cos", "float64", "float32"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] {
        apply_rotary(zeros({5, 8}, kInt64), c, s);
      },
      {"apply_rotary", "floating-point", "int64"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { rotary_cos_sin(4, 5); },
                                            {"rotary_cos_sin", "even dim", "5"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { rotary_cos_sin(-1, 4); },
                                            {"rotary_cos_sin", "seq_len", "-1"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { rotary_cos_sin(4, 4, 0.0); },
                                            {"rotary_cos_sin", "base", "0"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([] { rotary_cos_sin(4, 4, 10.0, kInt32); },
                                            {"rotary_cos_sin", "floating-point", "int32"}));
}
