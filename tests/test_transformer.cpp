// The Transformer modules against torch.nn's with the same weights (state dicts loaded both
// ways): encoder and decoder layers in every layout, normalisation order and activation, with
// masks; the stacks and the whole Transformer; finite differences; construction and errors.
#include <sstream>

#include "anvil/nn/nn.h"
#include "support/check.h"
#include "support/module_oracle.h"
#include "support/oracle.h"

using namespace anvil;
using test::ModuleCase;

namespace {

constexpr double kRtol = 1e-4, kAtol = 1e-5;  // float32 through attention, two norms and an MLP

Tensor input(const Shape& s, uint64_t seed, DType dt = kFloat32) {
  return test::uniform(s, seed, -1, 1, dt);
}

std::string py(bool b) { return b ? "True" : "False"; }
std::string py(double d) {
  std::ostringstream os;
  os.precision(17);
  os << d;
  return os.str();
}

std::string layer_ctor(const char* cls, const nn::TransformerLayerOptions& o) {
  return std::string("torch.nn.") + cls + "(" + std::to_string(o.d_model) + ", " +
         std::to_string(o.nhead) + ", dim_feedforward=" + std::to_string(o.dim_feedforward) +
         ", dropout=" + py(o.dropout) + ", activation='" + o.activation +
         "', layer_norm_eps=" + py(o.layer_norm_eps) + ", batch_first=" + py(o.batch_first) +
         ", norm_first=" + py(o.norm_first) + ", bias=" + py(o.bias) + ")";
}

// m against torch's `ctor` with torch called as `call` (inputs x[0], x[1], ...); the first
// n_grad inputs get gradients (masks do not).
::testing::AssertionResult matches(nn::Module& m, const std::string& ctor, const std::string& call,
                                   std::vector<Tensor> inputs, size_t n_grad,
                                   const std::function<Tensor(const std::vector<Tensor>&)>& run,
                                   bool train = false, double rtol = kRtol, double atol = kAtol) {
  ModuleCase c{.ctor = ctor,
               .call = call,
               .inputs = std::move(inputs),
               .train = train,
               .rtol = rtol,
               .atol = atol};
  for (size_t i = 0; i < c.inputs.size(); ++i) c.want_grad.push_back(i < n_grad);
  return test::module_matches_torch(
      m, c, [&](const std::vector<Tensor>& x) { return std::vector<Tensor>{run(x)}; });
}

// [N, S] bool padding: the last pad[n] positions of sequence n.
Tensor padding_mask(int64_t n, int64_t s, const std::vector<int64_t>& pad) {
  std::vector<uint8_t> v;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < s; ++j) v.push_back(j >= s - pad[size_t(i)]);
  return ne(tensor(v, {n, s}, kUInt8), 0);
}

// The options of the layer tests: every layout x normalisation order x activation.
std::vector<nn::TransformerLayerOptions> layer_configs(double dropout) {
  std::vector<nn::TransformerLayerOptions> out;
  for (bool bf : {false, true})
    for (bool nf : {false, true})
      for (const char* act : {"relu", "gelu"})
        out.push_back({.d_model = 8,
                       .nhead = 2,
                       .dim_feedforward = 12,
                       .dropout = dropout,
                       .activation = act,
                       .batch_first = bf,
                       .norm_first = nf});
  return out;
}

Shape seq_shape(const nn::TransformerLayerOptions& o, int64_t s, int64_t n) {
  return o.batch_first ? Shape{n, s, o.d_model} : Shape{s, n, o.d_model};
}

}  // namespace

// ---- TransformerEncoderLayer ----

TEST(TransformerEncoderLayer, MatchesTorchInEveryConfiguration) {
  manual_seed(1);
  const int64_t S = 5, N = 3;
  Tensor causal = nn::Transformer::generate_square_subsequent_mask(S);
  Tensor pad = padding_mask(N, S, {0, 2, 1});
  Tensor bool_mask = gt(input({S, S}, 2), 0.4);
  bool_mask = logical_and(bool_mask, logical_not(eye(S, -1, kBool)));  // every query sees itself
  // Eval mode with torch's default dropout (off), and training mode with dropout 0.
  for (auto [dropout, train] : {std::pair{0.1, false}, std::pair{0.0, true}}) {
    for (const auto& o : layer_configs(dropout)) {
      nn::TransformerEncoderLayer layer(o);
      const std::string ctor = layer_ctor("TransformerEncoderLayer", o);
      Tensor src = input(seq_shape(o, S, N), 3);
      SCOPED_TRACE(ctor + (train ? " train" : " eval"));
      EXPECT_TRUE(matches(
          layer, ctor, "m(x[0])", {src}, 1, [&](auto& x) { return layer(x[0]); }, train));
      EXPECT_TRUE(matches(
          layer, ctor, "m(x[0], src_mask=x[1], src_key_padding_mask=x[2])", {src, bool_mask, pad},
          1, [&](auto& x) { return layer.forward(x[0], x[1], x[2]); }, train));
      EXPECT_TRUE(matches(
          layer, ctor, "m(x[0], src_mask=x[1], is_causal=True)", {src, causal}, 1,
          [&](auto& x) { return layer.forward(x[0], {}, {}, true); }, train));
    }
  }
}

TEST(TransformerEncoderLayer, FloatMasksUnbatchedAndNoBiasMatchTorch) {
  manual_seed(2);
  nn::TransformerLayerOptions o{.d_model = 12, .nhead = 3, .dim_feedforward = 7, .bias = false};
  nn::TransformerEncoderLayer layer(o);
  EXPECT_FALSE(layer.norm1->bias.defined());
  const std::string ctor = layer_ctor("TransformerEncoderLayer", o);
  Tensor src = input({4, 2, 12}, 4);
  Tensor fmask = input({2 * 3, 4, 4}, 5);  // per batch and head
  Tensor fpad = mul(input({2, 4}, 6), 2.0);
  EXPECT_TRUE(matches(layer, ctor, "m(x[0], src_mask=x[1], src_key_padding_mask=x[2])",
                      {src, fmask, fpad}, 1,
                      [&](auto& x) { return layer.forward(x[0], x[1], x[2]); }));
  Tensor one = input({4, 12}, 7);  // unbatched [S, E]
  EXPECT_TRUE(matches(layer, ctor, "m(x[0], src_mask=x[1])", {one, input({4, 4}, 8)}, 1,
                      [&](auto& x) { return layer.forward(x[0], x[1]); }));
  EXPECT_EQ(layer(one).shape(), (Shape{4, 12}));
}

TEST(TransformerEncoderLayer, Float64AndGradcheck) {
  manual_seed(3);
  nn::TransformerLayerOptions o{.d_model = 4,
                                .nhead = 2,
                                .dim_feedforward = 6,
                                .dropout = 0.0,
                                .activation = "gelu",
                                .batch_first = true,
                                .norm_first = true};
  nn::TransformerEncoderLayer layer(o);
  layer.to(kFloat64);
  Tensor src = input({2, 3, 4}, 9, kFloat64);
  Tensor pad = padding_mask(2, 3, {1, 0});
  EXPECT_TRUE(matches(
      layer, layer_ctor("TransformerEncoderLayer", o), "m(x[0], src_key_padding_mask=x[1])",
      {src, pad}, 1, [&](auto& x) { return layer.forward(x[0], {}, x[1]); }, true, 1e-10, 1e-12));
  layer.eval();
  auto f = [&](const std::vector<Tensor>& x) { return layer.forward(x[0], {}, pad, false); };
  EXPECT_TRUE(test::gradcheck(f, {src.detach().clone().requires_grad_()}));
  auto causal = [&](const std::vector<Tensor>& x) { return layer.forward(x[0], {}, {}, true); };
  EXPECT_TRUE(test::gradcheck(causal, {src.detach().clone().requires_grad_()}));
  nn::TransformerEncoderLayer post({.d_model = 4, .nhead = 2, .dim_feedforward = 6});
  post.to(kFloat64);
  post.eval();
  EXPECT_TRUE(test::gradcheck([&](auto& x) { return post(x[0]); },
                              {input({3, 2, 4}, 10, kFloat64).requires_grad_()}));
}

// ---- TransformerDecoderLayer ----

TEST(TransformerDecoderLayer, MatchesTorchInEveryConfiguration) {
  manual_seed(4);
  const int64_t T = 4, S = 6, N = 2;
  Tensor causal = nn::Transformer::generate_square_subsequent_mask(T);
  Tensor tgt_pad = padding_mask(N, T, {1, 0});
  Tensor mem_pad = padding_mask(N, S, {0, 3});
  Tensor mem_mask = input({T, S}, 11);
  for (auto [dropout, train] : {std::pair{0.1, false}, std::pair{0.0, true}}) {
    for (const auto& o : layer_configs(dropout)) {
      nn::TransformerDecoderLayer layer(o);
      const std::string ctor = layer_ctor("TransformerDecoderLayer", o);
      Tensor tgt = input(seq_shape(o, T, N), 12), memory = input(seq_shape(o, S, N), 13);
      SCOPED_TRACE(ctor + (train ? " train" : " eval"));
      EXPECT_TRUE(matches(
          layer, ctor, "m(x[0], x[1])", {tgt, memory}, 2,
          [&](auto& x) { return layer.forward(x[0], x[1]); }, train));
      EXPECT_TRUE(matches(
          layer, ctor,
          "m(x[0], x[1], tgt_mask=x[2], memory_mask=x[3], tgt_key_padding_mask=x[4], "
          "memory_key_padding_mask=x[5], tgt_is_causal=True)",
          {tgt, memory, causal, mem_mask, tgt_pad, mem_pad}, 2,
          [&](auto& x) { return layer.forward(x[0], x[1], x[2], x[3], x[4], x[5], true); }, train));
    }
  }
}

TEST(TransformerDecoderLayer, UnbatchedMatchesTorch) {
  manual_seed(5);
  nn::TransformerLayerOptions o{.d_model = 8, .nhead = 4, .dim_feedforward = 16};
  nn::TransformerDecoderLayer layer(o);
  Tensor tgt = input({3, 8}, 14), memory = input({5, 8}, 15);
  Tensor causal = nn::Transformer::generate_square_subsequent_mask(3);
  EXPECT_TRUE(matches(layer, layer_ctor("TransformerDecoderLayer", o),
                      "m(x[0], x[1], tgt_mask=x[2], tgt_is_causal=True)", {tgt, memory, causal}, 2,
                      [&](auto& x) { return layer.forward(x[0], x[1], {}, {}, {}, {}, true); }));
}

// ---- the stacks ----

TEST(TransformerEncoder, StackWithNormMatchesTorch) {
  manual_seed(6);
  nn::TransformerLayerOptions o{
      .d_model = 8, .nhead = 2, .dim_feedforward = 16, .batch_first = true, .norm_first = true};
  // Distinct layers (a factory), so that a mix-up of layers would show.
  nn::TransformerEncoder enc([&] { return std::make_shared<nn::TransformerEncoderLayer>(o); }, 3,
                             std::make_shared<nn::LayerNorm>(8));
  EXPECT_EQ(enc.state_dict().count("layers.2.self_attn.in_proj_weight"), 1u);
  EXPECT_EQ(enc.state_dict().count("norm.weight"), 1u);
  const std::string ctor = "torch.nn.TransformerEncoder(" +
                           layer_ctor("TransformerEncoderLayer", o) +
                           ", 3, norm=torch.nn.LayerNorm(8), enable_nested_tensor=False)";
  Tensor src = input({2, 5, 8}, 16);
  Tensor pad = padding_mask(2, 5, {2, 0});
  Tensor causal = nn::Transformer::generate_square_subsequent_mask(5);
  EXPECT_TRUE(matches(enc, ctor, "m(x[0], src_key_padding_mask=x[1])", {src, pad}, 1,
                      [&](auto& x) { return enc.forward(x[0], {}, x[1]); }));
  EXPECT_TRUE(matches(enc, ctor, "m(x[0], mask=x[1], is_causal=True)", {src, causal}, 1,
                      [&](auto& x) { return enc.forward(x[0], x[1], {}, true); }));
  nn::TransformerEncoder bare([&] { return std::make_shared<nn::TransformerEncoderLayer>(o); }, 2);
  EXPECT_TRUE(matches(bare,
                      "torch.nn.TransformerEncoder(" + layer_ctor("TransformerEncoderLayer", o) +
                          ", 2, enable_nested_tensor=False)",
                      "m(x[0])", {src}, 1, [&](auto& x) { return bare(x[0]); }));
}

TEST(TransformerEncoder, DeepCopiesThePrototype) {
  manual_seed(7);
  auto proto = std::make_shared<nn::TransformerEncoderLayer>(8, 2, 16);
  nn::TransformerEncoder enc(proto, 3);
  ASSERT_EQ(enc.layers->size(), 3);
  for (int i = 0; i < 3; ++i) {
    auto layer = enc.layers->at<nn::TransformerEncoderLayer>(i);
    EXPECT_NE(layer.get(), proto.get());
    EXPECT_TRUE(equal(layer->self_attn->in_proj_weight, proto->self_attn->in_proj_weight));
    EXPECT_TRUE(equal(layer->linear2->weight, proto->linear2->weight));
    EXPECT_EQ(layer->options.dim_feedforward, 16);
  }
  {  // separate storage
    NoGradGuard no_grad;
    enc.layer_list[0]->linear1->weight.fill_(0.5);
  }
  EXPECT_FALSE(equal(enc.layer_list[1]->linear1->weight, enc.layer_list[0]->linear1->weight));
  EXPECT_FALSE(equal(proto->linear1->weight, enc.layer_list[0]->linear1->weight));
  EXPECT_EQ(enc.num_parameters(), 3 * proto->num_parameters());
}

TEST(TransformerDecoder, StackWithNormMatchesTorch) {
  manual_seed(8);
  nn::TransformerLayerOptions o{
      .d_model = 8, .nhead = 2, .dim_feedforward = 16, .activation = "gelu"};
  nn::TransformerDecoder dec([&] { return std::make_shared<nn::TransformerDecoderLayer>(o); }, 2,
                             std::make_shared<nn::LayerNorm>(8));
  const std::string ctor = "torch.nn.TransformerDecoder(" +
                           layer_ctor("TransformerDecoderLayer", o) +
                           ", 2, norm=torch.nn.LayerNorm(8))";
  Tensor tgt = input({4, 2, 8}, 17), memory = input({6, 2, 8}, 18);
  Tensor causal = nn::Transformer::generate_square_subsequent_mask(4);
  Tensor mem_pad = padding_mask(2, 6, {1, 3});
  EXPECT_TRUE(matches(dec, ctor,
                      "m(x[0], x[1], tgt_mask=x[2], memory_key_padding_mask=x[3], "
                      "tgt_is_causal=True)",
                      {tgt, memory, causal, mem_pad}, 2,
                      [&](auto& x) { return dec.forward(x[0], x[1], x[2], {}, {}, x[3], true); }));
  auto proto = std::make_shared<nn::TransformerDecoderLayer>(o);
  nn::TransformerDecoder copies(proto, 2);
  EXPECT_TRUE(equal(copies.layer_list[1]->multihead_attn->in_proj_weight,
                    proto->multihead_attn->in_proj_weight));
  EXPECT_EQ(copies.state_dict().count("norm.weight"), 0u);
}

// ---- Transformer ----

TEST(Transformer, MatchesTorch) {
  manual_seed(9);
  for (bool bf : {false, true}) {
    nn::Transformer model({.d_model = 8,
                           .nhead = 2,
                           .num_encoder_layers = 2,
                           .num_decoder_layers = 2,
                           .dim_feedforward = 16,
                           .batch_first = bf});
    const std::string ctor = "torch.nn.Transformer(8, 2, 2, 2, 16, batch_first=" + py(bf) + ")";
    const int64_t S = 5, T = 4, N = 2;
    Tensor src = input(bf ? Shape{N, S, 8} : Shape{S, N, 8}, 19);
    Tensor tgt = input(bf ? Shape{N, T, 8} : Shape{T, N, 8}, 20);
    Tensor tgt_mask = nn::Transformer::generate_square_subsequent_mask(T);
    Tensor src_pad = padding_mask(N, S, {0, 2});
    SCOPED_TRACE(ctor);
    EXPECT_TRUE(matches(model, ctor,
                        "m(x[0], x[1], tgt_mask=x[2], src_key_padding_mask=x[3], "
                        "memory_key_padding_mask=x[3])",
                        {src, tgt, tgt_mask, src_pad}, 2, [&](auto& x) {
                          return model.forward(x[0], x[1], {}, x[2], {}, x[3], {}, x[3]);
                        }));
    EXPECT_EQ(model.forward(src, tgt).shape(), tgt.shape());
  }
}

TEST(Transformer, LoadsTorchsStateDict) {
  // The other direction: torch's own initial values into anvil's modules (strictly, so the
  // key sets must be equal), then the same outputs and gradients.
  auto load_torch = [](nn::Module& m, const std::string& ctor) {
    std::string keys;
    std::vector<std::string> names;
    for (auto& [k, v] : m.state_dict()) {
      keys += "'" + k + "', ";
      names.push_back(k);
    }
    auto values = test::TorchOracle::get().run_code(
        "torch.manual_seed(0)\nsd = (" + ctor + ").state_dict()\nkeys = [" + keys +
        "]\nassert sorted(keys) == sorted(sd.keys()), (sorted(keys), sorted(sd.keys()))\n"
        "out = [sd[k] for k in keys]\n");
    StateDict dict;
    for (size_t i = 0; i < names.size(); ++i) dict[names[i]] = values[i];
    m.load_state_dict(dict);
    return dict;
  };
  manual_seed(11);
  const std::string ctor = "torch.nn.Transformer(8, 2, 1, 2, 16, dropout=0.0, batch_first=True)";
  nn::Transformer model({.d_model = 8,
                         .nhead = 2,
                         .num_encoder_layers = 1,
                         .num_decoder_layers = 2,
                         .dim_feedforward = 16,
                         .dropout = 0.0,
                         .batch_first = true});
  StateDict theirs = load_torch(model, ctor);
  EXPECT_TRUE(equal(model.decoder->layer_list[1]->multihead_attn->in_proj_weight,
                    theirs.at("decoder.layers.1.multihead_attn.in_proj_weight")));
  Tensor src = input({2, 5, 8}, 21), tgt = input({2, 3, 8}, 22);
  EXPECT_TRUE(matches(
      model, ctor, "m(x[0], x[1])", {src, tgt}, 2,
      [&](auto& x) { return model.forward(x[0], x[1]); }, true));
  nn::MultiheadAttention mha(8, 4, 0.0, true, true, false, 3, 5);
  const std::string mctor = "torch.nn.MultiheadAttention(8, 4, add_bias_kv=True, kdim=3, vdim=5)";
  load_torch(mha, mctor);
  Tensor q = input({2, 2, 8}, 23), k = input({4, 2, 3}, 24), v = input({4, 2, 5}, 25);
  test::ModuleCase c{.ctor = mctor,
                     .call = "m(x[0], x[1], x[2])",
                     .inputs = {q, k, v},
                     .rtol = kRtol,
                     .atol = kAtol};
  EXPECT_TRUE(test::module_matches_torch(mha, c, [&](const std::vector<Tensor>& x) {
    auto [out, w] = mha(x[0], x[1], x[2]);
    return std::vector<Tensor>{out, w};
  }));
}

TEST(Transformer, ConstructionIsTorchs) {
  manual_seed(10);
  nn::Transformer model({.d_model = 16,
                         .nhead = 4,
                         .num_encoder_layers = 2,
                         .num_decoder_layers = 3,
                         .dim_feedforward = 32});
  auto sd = model.state_dict();
  for (const char* k : {"encoder.layers.1.self_attn.in_proj_weight", "encoder.norm.weight",
                        "encoder.norm.bias", "decoder.layers.2.multihead_attn.out_proj.weight",
                        "decoder.layers.0.norm3.bias", "decoder.norm.weight"})
    EXPECT_EQ(sd.count(k), 1u) << k;
  EXPECT_EQ(sd.count("encoder.layers.2.linear1.weight"), 0u);
  // torch's parameter count for the same configuration.
  auto& oracle = test::TorchOracle::get();
  auto count = oracle.run_code(
      "out = torch.tensor(sum(p.numel() for p in torch.nn.Transformer(16, 4, 2, 3, "
      "32).parameters()))");
  EXPECT_EQ(model.num_parameters(), count[0].item<int64_t>());
  // xavier_uniform_ on every matrix: linear1.weight [32, 16] within sqrt(6 / 48); layers differ.
  auto l0 = model.encoder->layer_list[0], l1 = model.encoder->layer_list[1];
  EXPECT_LE(max(abs(l0->linear1->weight)).item<float>(), float(std::sqrt(6.0 / 48)));
  EXPECT_GT(max(abs(l0->linear1->weight)).item<float>(), 0.25f);  // not Linear's 1/sqrt(16)
  EXPECT_FALSE(equal(l0->linear1->weight, l1->linear1->weight));
  // Vectors keep their initialisation: norms ones, in_proj_bias zeros.
  EXPECT_EQ(min(l0->norm1->weight).item<float>(), 1.0f);
  EXPECT_EQ(max(abs(l0->self_attn->in_proj_bias)).item<float>(), 0.0f);
  // torch's defaults.
  nn::Transformer def;
  EXPECT_EQ(def.options.d_model, 512);
  EXPECT_EQ(def.encoder->num_layers, 6);
  EXPECT_EQ(def.decoder->layer_list[0]->options.dim_feedforward, 2048);
  EXPECT_EQ(def.decoder->layer_list[0]->dropout->p, 0.1);
  EXPECT_EQ(def.encoder->layer_list[0]->norm1->eps, 1e-5);
}

TEST(Transformer, SquareSubsequentMaskIsTorchs) {
  Tensor m = nn::Transformer::generate_square_subsequent_mask(4);
  auto& oracle = test::TorchOracle::get();
  Tensor want = oracle.run_code("out = torch.nn.Transformer.generate_square_subsequent_mask(4)")[0];
  EXPECT_TRUE(equal(m, want));
  EXPECT_EQ(m.dtype(), kFloat32);
  EXPECT_EQ(nn::Transformer::generate_square_subsequent_mask(3, kFloat64).dtype(), kFloat64);
  EXPECT_EQ(nn::Transformer::generate_square_subsequent_mask(0).shape(), (Shape{0, 0}));
  EXPECT_TRUE(
      test::throws_with<ValueError>([] { nn::Transformer::generate_square_subsequent_mask(-1); },
                                    {"generate_square_subsequent_mask", "sz >= 0", "-1"}));
}

// ---- errors ----

TEST(Transformer, Errors) {
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { nn::TransformerEncoderLayer(10, 4); },
      {"TransformerEncoderLayer", "d_model divisible by nhead", "d_model=10", "nhead=4"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { nn::TransformerDecoderLayer(8, 2, 16, 0.1, "tanh"); },
      {"TransformerDecoderLayer", "\"relu\" or \"gelu\"", "\"tanh\""}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::TransformerEncoderLayer(8, 2, 0); },
                                            {"TransformerEncoderLayer", "dim_feedforward=0"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { nn::TransformerEncoder(std::make_shared<nn::TransformerEncoderLayer>(8, 2, 16), 0); },
      {"TransformerEncoder", "num_layers >= 1", "0"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { nn::TransformerEncoder(std::shared_ptr<nn::TransformerEncoderLayer>(), 2); },
      {"TransformerEncoder", "null"}));

  nn::TransformerEncoderLayer enc(8, 2, 16, 0.1, "relu", 1e-5, true);
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        enc(zeros({2, 5, 6}));
      },
      {"TransformerEncoderLayer::forward", "src", "[N, S, 8]", "[2, 5, 6]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        enc.forward(zeros({2, 5, 8}), zeros({4, 4}, kBool));
      },
      {"MultiheadAttention::forward", "attn_mask", "[5, 5]", "[4, 4]"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] {
        enc.forward(zeros({2, 5, 8}), {}, zeros({2, 5}, kInt64));
      },
      {"key_padding_mask", "bool or floating", "int64"}));
  nn::TransformerDecoderLayer dec(8, 2, 16);
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        dec.forward(zeros({4, 2, 8}), zeros({6, 8}));
      },
      {"TransformerDecoderLayer::forward", "memory", "rank 3", "[6, 8]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        dec.forward(zeros({4, 2, 8}), zeros({6, 2, 7}));
      },
      {"TransformerDecoderLayer::forward", "memory", "[S, N, 8]", "[6, 2, 7]"}));
  nn::Transformer model({.d_model = 8,
                         .nhead = 2,
                         .num_encoder_layers = 1,
                         .num_decoder_layers = 1,
                         .dim_feedforward = 8});
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        model.forward(zeros({5, 2, 8}), zeros({4, 3, 8}));
      },
      {"Transformer::forward", "same batch size", "[5, 2, 8]", "[4, 3, 8]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        model.forward(zeros({5, 2, 8}), zeros({4, 2, 6}));
      },
      {"Transformer::forward", "d_model=8", "[4, 2, 6]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        model.forward(zeros({5, 2, 8}), zeros({4, 8}));
      },
      {"Transformer::forward", "both batched", "[5, 2, 8]", "[4, 8]"}));
}
