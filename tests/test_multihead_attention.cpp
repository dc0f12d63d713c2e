// nn::MultiheadAttention against torch.nn.MultiheadAttention with the same weights: outputs,
// attention weights and the gradients of inputs and parameters, for every layout, mask kind
// and option; finite-difference gradients; initialisation; argument errors.
#include <algorithm>
#include <cmath>

#include "anvil/nn/nn.h"
#include "support/check.h"
#include "support/module_oracle.h"

using namespace anvil;
using test::ModuleCase;

namespace {

constexpr double kRtol = 1e-4, kAtol = 1e-5;  // float32 through two products and a softmax

Tensor input(const Shape& s, uint64_t seed, DType dt = kFloat32) {
  return test::uniform(s, seed, -1, 1, dt);
}

// Both sides called as mha(x[0], x[1], x[2], <args>): `args` is the Python keyword list and
// `call` the anvil call on the leaves.
::testing::AssertionResult matches(
    nn::MultiheadAttention& m, const std::string& ctor, std::vector<Tensor> inputs,
    const std::string& args,
    const std::function<nn::MultiheadAttention::Output(const std::vector<Tensor>&)>& call,
    bool train = false, double rtol = kRtol, double atol = kAtol) {
  ModuleCase c{.ctor = ctor,
               .call = "m(x[0], x[1], x[2]" + args + ")",
               .inputs = std::move(inputs),
               .train = train,
               .rtol = rtol,
               .atol = atol};
  // Masks (bool or floating) are constants: no gradients for them on either side.
  for (size_t i = 0; i < c.inputs.size(); ++i) c.want_grad.push_back(i < 3);
  return test::module_matches_torch(m, c, [&](const std::vector<Tensor>& x) {
    auto [out, weights] = call(x);
    return std::vector<Tensor>{out, weights};
  });
}

// [N, S] padding: the last `pad[n]` keys of sequence n.
Tensor padding_mask(int64_t n, int64_t s, const std::vector<int64_t>& pad) {
  std::vector<uint8_t> v;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < s; ++j) v.push_back(j >= s - pad[size_t(i)]);
  return ne(tensor(v, {n, s}, kUInt8), 0);
}

// A bool [L, S] mask (true = not allowed) with at least one allowed key per row.
Tensor bool_attn_mask(int64_t l, int64_t s, uint64_t seed) {
  Tensor masked = gt(test::uniform({l, s}, seed), 0.3);
  Tensor free_key = eq(arange(0, s, 1, kInt64), int64_t(seed) % s);  // allowed in every row
  return logical_and(masked, logical_not(free_key));
}

}  // namespace

// ---- values and gradients against torch ----

TEST(MultiheadAttention, CrossAttentionWithWeightsMatchesTorch) {
  manual_seed(1);
  nn::MultiheadAttention m(8, 2);
  Tensor q = input({3, 2, 8}, 1), k = input({5, 2, 8}, 2), v = input({5, 2, 8}, 3);
  EXPECT_TRUE(matches(m, "torch.nn.MultiheadAttention(8, 2)", {q, k, v}, "",
                      [&](auto& x) { return m(x[0], x[1], x[2]); }));
  auto [out, w] = m(q, k, v);
  EXPECT_EQ(out.shape(), (Shape{3, 2, 8}));
  EXPECT_EQ(w.shape(), (Shape{2, 3, 5}));
  // Per-head weights.
  EXPECT_TRUE(matches(m, "torch.nn.MultiheadAttention(8, 2)", {q, k, v},
                      ", average_attn_weights=False",
                      [&](auto& x) { return m(x[0], x[1], x[2], {}, true, {}, false); }));
  EXPECT_EQ(m(q, k, v, {}, true, {}, false).attn_weights.shape(), (Shape{2, 2, 3, 5}));
  // Without weights: scaled_dot_product_attention, no weights returned.
  EXPECT_TRUE(matches(m, "torch.nn.MultiheadAttention(8, 2)", {q, k, v}, ", need_weights=False",
                      [&](auto& x) { return m(x[0], x[1], x[2], {}, false); }));
  EXPECT_FALSE(m(q, k, v, {}, false).attn_weights.defined());
}

TEST(MultiheadAttention, SelfAttentionAndBatchFirstMatchTorch) {
  manual_seed(2);
  nn::MultiheadAttention m(12, 3, {.batch_first = true});
  Tensor x = input({2, 5, 12}, 4);
  const std::string ctor = "torch.nn.MultiheadAttention(12, 3, batch_first=True)";
  ModuleCase c{
      .ctor = ctor, .call = "m(x[0], x[0], x[0])", .inputs = {x}, .rtol = kRtol, .atol = kAtol};
  EXPECT_TRUE(test::module_matches_torch(m, c, [&](const std::vector<Tensor>& in) {
    auto [out, w] = m(in[0], in[0], in[0]);
    return std::vector<Tensor>{out, w};
  }));
  c.call = "m(x[0], x[0], x[0], need_weights=False)[0]";
  EXPECT_TRUE(test::module_matches_torch(m, c, [&](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{m(in[0])};  // the one-tensor forward
  }));
  // Training mode with dropout 0 is the same computation.
  c.train = true;
  EXPECT_TRUE(test::module_matches_torch(
      m, c, [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{m(in[0])}; }));
  EXPECT_EQ(m(x).shape(), (Shape{2, 5, 12}));
  // In a Sequential.
  auto seq = std::make_shared<nn::Sequential>();
  seq->push_back(std::make_shared<nn::MultiheadAttention>(
      12, 3, nn::MultiheadAttentionOptions{.batch_first = true}));
  EXPECT_EQ((*seq)(x).shape(), (Shape{2, 5, 12}));
}

TEST(MultiheadAttention, KeyPaddingMasksMatchTorch) {
  manual_seed(3);
  nn::MultiheadAttention m(8, 4, {.batch_first = true});
  const std::string ctor = "torch.nn.MultiheadAttention(8, 4, batch_first=True)";
  Tensor q = input({3, 4, 8}, 5), k = input({3, 6, 8}, 6), v = input({3, 6, 8}, 7);
  Tensor pad = padding_mask(3, 6, {0, 2, 5});
  Tensor fpad = mul(input({3, 6}, 8), 3.0);  // an additive float mask
  for (bool weights : {true, false}) {
    const std::string nw = weights ? "" : ", need_weights=False";
    EXPECT_TRUE(matches(m, ctor, {q, k, v, pad}, ", key_padding_mask=x[3]" + nw, [&](auto& x) {
      return m(x[0], x[1], x[2], x[3], weights);
    })) << weights;
    EXPECT_TRUE(matches(m, ctor, {q, k, v, fpad}, ", key_padding_mask=x[3]" + nw, [&](auto& x) {
      return m(x[0], x[1], x[2], x[3], weights);
    })) << weights;
  }
  // Padded keys get no weight.
  auto [out, w] = m(q, k, v, pad);
  EXPECT_EQ(max(w.select(0, 2).narrow(1, 1, 5)).item<float>(), 0.0f);
  EXPECT_NEAR(sum(w.select(0, 2).select(0, 0)).item<float>(), 1.0f, 1e-6);
}

TEST(MultiheadAttention, FullyMaskedQueriesAreTorchs) {
  // Sequence 1 is all padding: NaN with weights (softmax over -inf), zeros without (torch's
  // scaled_dot_product_attention on the CPU). Outputs only: the NaNs reach every gradient.
  manual_seed(12);
  nn::MultiheadAttention m(8, 2, {.batch_first = true});
  Tensor q = input({2, 3, 8}, 40), k = input({2, 4, 8}, 41);
  Tensor pad = padding_mask(2, 4, {1, 4});
  for (bool weights : {true, false}) {
    ModuleCase c{
        .ctor = "torch.nn.MultiheadAttention(8, 2, batch_first=True)",
        .call = std::string("[t.detach() if t is not None else None for t in m(x[0], x[1], "
                            "x[1], key_padding_mask=x[2], need_weights=") +
                (weights ? "True" : "False") + ")]",
        .inputs = {q, k, pad},
        .want_grad = {false, false, false},
        .rtol = kRtol,
        .atol = kAtol};
    EXPECT_TRUE(test::module_matches_torch(m, c, [&](const std::vector<Tensor>& x) {
      NoGradGuard no_grad;
      auto [out, w] = m(x[0], x[1], x[1], x[2], weights);
      return std::vector<Tensor>{out, w};
    })) << weights;
  }
  Tensor out = m(q, k, k, pad, false).attn_output;
  EXPECT_EQ(sum(isnan(out).to(kFloat32)).item<float>(), 0.0f);
}

TEST(MultiheadAttention, AttentionMasksMatchTorch) {
  manual_seed(4);
  nn::MultiheadAttention m(8, 2);
  const std::string ctor = "torch.nn.MultiheadAttention(8, 2)";
  const int64_t L = 4, S = 5, N = 3;
  Tensor q = input({L, N, 8}, 9), k = input({S, N, 8}, 10), v = input({S, N, 8}, 11);
  Tensor bmask = bool_attn_mask(L, S, 12);
  Tensor fmask = mul(input({L, S}, 13), 2.0);
  Tensor fmask3 = mul(input({N * 2, L, S}, 14), 2.0);
  Tensor bmask3 = gt(input({N * 2, L, S}, 15), 0.5);
  bmask3 = logical_and(bmask3, ne(arange(0, S, 1, kInt64), 1).expand({N * 2, L, S}));  // key 1 free
  Tensor pad = padding_mask(N, S, {1, 0, 2});
  for (bool weights : {true, false}) {
    const std::string nw = weights ? "" : ", need_weights=False";
    int i = 0;
    for (const Tensor& mask : {bmask, fmask, fmask3, bmask3}) {
      EXPECT_TRUE(matches(m, ctor, {q, k, v, mask}, ", attn_mask=x[3]" + nw,
                          [&](auto& x) { return m(x[0], x[1], x[2], {}, weights, x[3]); }))
          << "mask " << i << " weights " << weights;
      ++i;
    }
    // Both masks, bool and float mixed as torch allows it.
    EXPECT_TRUE(matches(m, ctor, {q, k, v, bmask, pad},
                        ", attn_mask=x[3], key_padding_mask=x[4]" + nw,
                        [&](auto& x) { return m(x[0], x[1], x[2], x[4], weights, x[3]); }));
  }
}

TEST(MultiheadAttention, CausalMatchesTorch) {
  manual_seed(5);
  nn::MultiheadAttention m(8, 2, {.batch_first = true});
  const std::string ctor = "torch.nn.MultiheadAttention(8, 2, batch_first=True)";
  Tensor x = input({2, 5, 8}, 16);
  Tensor causal = nn::Transformer::generate_square_subsequent_mask(5);
  Tensor pad = padding_mask(2, 5, {0, 2});
  for (bool weights : {true, false}) {
    const std::string nw = weights ? "" : ", need_weights=False";
    // torch needs the mask with is_causal; anvil takes it with or without.
    EXPECT_TRUE(
        matches(m, ctor, {x, x, x, causal}, ", attn_mask=x[3], is_causal=True" + nw,
                [&](auto& in) { return m(in[0], in[1], in[2], {}, weights, in[3], true, true); }));
    EXPECT_TRUE(
        matches(m, ctor, {x, x, x, causal}, ", attn_mask=x[3], is_causal=True" + nw,
                [&](auto& in) { return m(in[0], in[1], in[2], {}, weights, {}, true, true); }));
    EXPECT_TRUE(
        matches(m, ctor, {x, x, x, causal, pad},
                ", attn_mask=x[3], key_padding_mask=x[4], is_causal=True" + nw,
                [&](auto& in) { return m(in[0], in[1], in[2], in[4], weights, {}, true, true); }));
  }
  // Query 0 sees key 0 alone.
  auto [out, w] = m(x, x, x, {}, true, {}, true, true);
  EXPECT_NEAR(w.select(0, 1).select(0, 0).select(0, 0).item<float>(), 1.0f, 1e-6);
}

TEST(MultiheadAttention, KdimVdimAndNoBiasMatchTorch) {
  manual_seed(6);
  nn::MultiheadAttention m(8, 2, 0.0, true, false, false, 5, 3);
  EXPECT_FALSE(m.in_proj_weight.defined());
  EXPECT_EQ(m.k_proj_weight.shape(), (Shape{8, 5}));
  EXPECT_EQ(m.v_proj_weight.shape(), (Shape{8, 3}));
  Tensor q = input({3, 2, 8}, 17), k = input({4, 2, 5}, 18), v = input({4, 2, 3}, 19);
  Tensor pad = padding_mask(2, 4, {1, 0});
  const std::string ctor = "torch.nn.MultiheadAttention(8, 2, kdim=5, vdim=3)";
  EXPECT_TRUE(matches(m, ctor, {q, k, v, pad}, ", key_padding_mask=x[3]",
                      [&](auto& x) { return m(x[0], x[1], x[2], x[3]); }));
  EXPECT_TRUE(matches(m, ctor, {q, k, v}, ", need_weights=False",
                      [&](auto& x) { return m(x[0], x[1], x[2], {}, false); }));

  nn::MultiheadAttention nb(8, 4, {.bias = false, .batch_first = true});
  EXPECT_FALSE(nb.in_proj_bias.defined());
  EXPECT_FALSE(nb.out_proj->bias.defined());
  Tensor qb = input({2, 3, 8}, 20), kb = input({2, 6, 8}, 21);
  EXPECT_TRUE(matches(nb, "torch.nn.MultiheadAttention(8, 4, bias=False, batch_first=True)",
                      {qb, kb, kb}, "", [&](auto& x) { return nb(x[0], x[1], x[2]); }));
}

TEST(MultiheadAttention, BiasKvAndZeroAttnMatchTorch) {
  manual_seed(7);
  nn::MultiheadAttention m(8, 2, 0.0, true, true, true);
  EXPECT_EQ(m.bias_k.shape(), (Shape{1, 1, 8}));
  const std::string ctor =
      "torch.nn.MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True)";
  Tensor q = input({3, 2, 8}, 22), k = input({4, 2, 8}, 23), v = input({4, 2, 8}, 24);
  Tensor mask = bool_attn_mask(3, 4, 25);
  Tensor pad = padding_mask(2, 4, {0, 1});
  for (bool weights : {true, false}) {
    const std::string nw = weights ? "" : ", need_weights=False";
    EXPECT_TRUE(matches(m, ctor, {q, k, v, mask, pad},
                        ", attn_mask=x[3], key_padding_mask=x[4]" + nw,
                        [&](auto& x) { return m(x[0], x[1], x[2], x[4], weights, x[3]); }));
  }
  EXPECT_EQ(m(q, k, v).attn_weights.shape(), (Shape{2, 3, 6}));  // S + bias + zero key
  nn::MultiheadAttention z(8, 2, 0.0, true, false, true);
  EXPECT_TRUE(matches(z, "torch.nn.MultiheadAttention(8, 2, add_zero_attn=True)", {q, k, v}, "",
                      [&](auto& x) { return z(x[0], x[1], x[2]); }));
}

TEST(MultiheadAttention, UnbatchedMatchesTorch) {
  manual_seed(8);
  for (bool bf : {false, true}) {
    nn::MultiheadAttention m(8, 2, {.batch_first = bf});
    const std::string ctor =
        std::string("torch.nn.MultiheadAttention(8, 2, batch_first=") + (bf ? "True)" : "False)");
    Tensor q = input({3, 8}, 26), k = input({5, 8}, 27), v = input({5, 8}, 28);
    Tensor pad = ne(tensor(std::vector<uint8_t>{0, 0, 1, 0, 1}, {5}, kUInt8), 0);
    Tensor mask3 = mul(input({2, 3, 5}, 29), 2.0);
    for (bool weights : {true, false}) {
      const std::string nw = weights ? "" : ", need_weights=False";
      EXPECT_TRUE(matches(m, ctor, {q, k, v, pad, mask3},
                          ", key_padding_mask=x[3], attn_mask=x[4]" + nw,
                          [&](auto& x) { return m(x[0], x[1], x[2], x[3], weights, x[4]); }));
      EXPECT_TRUE(matches(m, ctor, {q, k, v}, ", average_attn_weights=False" + nw,
                          [&](auto& x) { return m(x[0], x[1], x[2], {}, weights, {}, false); }));
    }
    auto [out, w] = m(q, k, v, {}, true, {}, false);
    EXPECT_EQ(out.shape(), (Shape{3, 8}));
    EXPECT_EQ(w.shape(), (Shape{2, 3, 5}));
  }
}

TEST(MultiheadAttention, Float64MatchesTorchTightly) {
  manual_seed(9);
  nn::MultiheadAttention m(6, 3, 0.0, true, false, false, 4, 6, true);
  m.to(kFloat64);
  Tensor q = input({2, 3, 6}, 30, kFloat64), k = input({2, 4, 4}, 31, kFloat64),
         v = input({2, 4, 6}, 32, kFloat64);
  Tensor fmask = input({3, 4}, 33, kFloat64);
  EXPECT_TRUE(matches(
      m, "torch.nn.MultiheadAttention(6, 3, kdim=4, vdim=6, batch_first=True)", {q, k, v, fmask},
      ", attn_mask=x[3]", [&](auto& x) { return m(x[0], x[1], x[2], {}, true, x[3]); }, true, 1e-10,
      1e-12));
}

// ---- finite differences ----

TEST(MultiheadAttention, Gradcheck) {
  manual_seed(10);
  nn::MultiheadAttention m(4, 2, 0.0, true, true, false, 3, std::nullopt);
  m.to(kFloat64);
  Tensor pad = padding_mask(2, 3, {1, 0});
  Tensor mask = input({2, 3}, 34, kFloat64);
  // The parameters enter as inputs: f points the module's members at the perturbed copies.
  Tensor qw = m.q_proj_weight, kw = m.k_proj_weight, bias = m.in_proj_bias, ow = m.out_proj->weight;
  auto f = [&](const std::vector<Tensor>& x) {
    m.q_proj_weight = x[3], m.k_proj_weight = x[4], m.in_proj_bias = x[5],
    m.out_proj->weight = x[6];
    auto [out, w] = m(x[0], x[1], x[2], pad, true, mask, false);
    m.q_proj_weight = qw, m.k_proj_weight = kw, m.in_proj_bias = bias, m.out_proj->weight = ow;
    return add(sum(mul(out, out)), sum(mul(w, w)));
  };
  std::vector<Tensor> in{input({2, 2, 4}, 35, kFloat64),
                         input({3, 2, 3}, 36, kFloat64),
                         input({3, 2, 4}, 37, kFloat64),
                         qw,
                         kw,
                         bias,
                         ow};
  for (auto& t : in) t = t.detach().clone().requires_grad_();
  EXPECT_TRUE(test::gradcheck(f, in));
  auto g = [&](const std::vector<Tensor>& x) {
    return m(x[0], x[1], x[2], pad, false, mask).attn_output;
  };
  EXPECT_TRUE(test::gradcheck(g, {in[0], in[1], in[2]}));
}

// ---- construction ----

TEST(MultiheadAttention, ParametersAndInitialisationAreTorchs) {
  manual_seed(11);
  nn::MultiheadAttention m(16, 4);
  std::vector<std::string> keys;
  for (auto& [k, v] : m.named_parameters()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight",
                                            "out_proj.bias"}));
  EXPECT_EQ(m.in_proj_weight.shape(), (Shape{48, 16}));
  EXPECT_EQ(m.head_dim, 4);
  EXPECT_EQ(max(abs(m.in_proj_bias)).item<float>(), 0.0f);
  EXPECT_EQ(max(abs(m.out_proj->bias)).item<float>(), 0.0f);
  // xavier_uniform_ on [48, 16]: bound sqrt(6 / (16 + 48)).
  const float bound = float(std::sqrt(6.0 / 64));
  EXPECT_LE(max(abs(m.in_proj_weight)).item<float>(), bound);
  EXPECT_GT(max(abs(m.in_proj_weight)).item<float>(), 0.9f * bound);
  // out_proj is Linear's default: U(-1/sqrt(16), 1/sqrt(16)).
  EXPECT_LE(max(abs(m.out_proj->weight)).item<float>(), 0.25f);

  nn::MultiheadAttention sep(16, 4, 0.0, true, true, false, 8, 16);
  keys.clear();
  for (auto& [k, v] : sep.state_dict()) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"bias_k", "bias_v", "in_proj_bias", "k_proj_weight",
                                            "out_proj.bias", "out_proj.weight", "q_proj_weight",
                                            "v_proj_weight"}));
  EXPECT_EQ(sep.extra_repr(),
            "embed_dim=16, num_heads=4, dropout=0.0, bias=true, kdim=8, vdim=16, "
            "add_bias_kv=true, batch_first=false");
}

TEST(MultiheadAttention, ConstructorErrors) {
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { nn::MultiheadAttention(10, 3); },
      {"MultiheadAttention", "divisible by num_heads", "embed_dim=10", "num_heads=3"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::MultiheadAttention(8, 0); },
                                            {"MultiheadAttention", "positive", "num_heads=0"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::MultiheadAttention(8, 2, 1.5); },
                                            {"MultiheadAttention", "dropout", "1.5"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::MultiheadAttention(8, 2, {.kdim = 0}); },
                                            {"MultiheadAttention", "kdim=0"}));
}

TEST(MultiheadAttention, ForwardErrors) {
  nn::MultiheadAttention m(8, 2);
  Tensor q = zeros({3, 2, 8}), k = zeros({5, 2, 8});
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        m(zeros({3, 2, 7}), k, k);
      },
      {"MultiheadAttention::forward", "query", "[L, N, 8]", "[3, 2, 7]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        m(zeros({2, 3, 2, 8}), k, k);
      },
      {"MultiheadAttention::forward", "query", "[2, 3, 2, 8]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        m(q, zeros({5, 2, 6}), k);
      },
      {"MultiheadAttention::forward", "key", "[S, N, 8]", "[5, 2, 6]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        m(q, zeros({5, 8}), k);
      },
      {"MultiheadAttention::forward", "key", "[5, 8]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        m(q, zeros({5, 3, 8}), zeros({5, 3, 8}));
      },
      {"MultiheadAttention::forward", "batch size N=2", "[5, 3, 8]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        m(q, k, zeros({4, 2, 8}));
      },
      {"MultiheadAttention::forward", "same sequence length", "[4, 2, 8]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        m(q, k, k, zeros({2, 4}, kBool));
      },
      {"MultiheadAttention::forward", "key_padding_mask", "[2, 5]", "[2, 4]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        m(q, k, k, {}, true, zeros({5, 3}, kBool));
      },
      {"MultiheadAttention::forward", "attn_mask", "[3, 5]", "[4, 3, 5]", "[5, 3]"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] {
        m(q, k, k, zeros({2, 5}, kInt64));
      },
      {"MultiheadAttention::forward", "key_padding_mask", "bool or floating", "int64"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] {
        m(q, k, k, {}, true, zeros({3, 5}, kInt32));
      },
      {"MultiheadAttention::forward", "attn_mask", "int32"}));
  nn::MultiheadAttention bf(8, 2, {.batch_first = true});
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        bf(zeros({2, 3, 4}));
      },
      {"MultiheadAttention::forward", "[N, L, 8]", "[2, 3, 4]"}));
}
