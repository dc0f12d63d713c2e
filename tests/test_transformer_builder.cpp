// ModelBuilder's sequence layers: an encoder classifier over token ids described in JSON,
// its shapes, keys and round trip, its errors, and a few training steps on a toy task.
#include "anvil/nn/nn.h"
#include "anvil/optim/optimizer.h"
#include "support/check.h"

using namespace anvil;
using nlohmann::json;

namespace {

const json kClassifier = json::parse(R"({
  "input_shape": [8],
  "layers": [
    {"type": "embedding", "num_embeddings": 8, "embedding_dim": 16},
    {"type": "positional_encoding", "kind": "sinusoidal", "max_len": 64},
    {"type": "transformer_encoder", "d_model": 16, "nhead": 2, "num_layers": 2,
     "dim_feedforward": 32, "dropout": 0.0, "norm_first": true, "activation": "gelu",
     "norm": true},
    {"type": "mean_pool"},
    {"type": "dense", "units": 2}
  ]
})");

// Sequences of 8 tokens from 0..7 and whether they contain token 3: the tokens are drawn
// without 3, then 3 is written at a random place in every other sequence.
std::pair<Tensor, Tensor> contains_three(int64_t n, uint64_t seed) {
  Generator gen(seed);
  Tensor draws = randint(0, 7, {n, 8}, kInt64, &gen);
  Tensor places = randint(0, 8, {n}, kInt64, &gen);
  std::vector<int64_t> tokens = draws.to_vector<int64_t>(), where = places.to_vector<int64_t>();
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = 0; t < 8; ++t) {
      int64_t& tok = tokens[size_t(i * 8 + t)];
      if (tok >= 3) ++tok;  // 0..7 without 3
    }
    labels[size_t(i)] = i % 2;
    if (i % 2) tokens[size_t(i * 8 + where[size_t(i)])] = 3;
  }
  return {tensor(tokens, {n, 8}, kInt64), tensor(labels, {n}, kInt64)};
}

double accuracy(const Tensor& logits, const Tensor& labels) {
  return mean(eq(argmax(logits, 1), labels).to(kFloat32)).item<float>();
}

}  // namespace

TEST(TransformerBuilder, EncoderClassifierFromJson) {
  nn::ModelBuilder b = nn::ModelBuilder::from_json(kClassifier, 4);
  EXPECT_EQ(b.output_shape(), (Shape{4, 2}));
  EXPECT_EQ(b.to_json(), kClassifier);
  auto model = b.build();
  EXPECT_EQ(model->num_parameters(), b.num_parameters());
  auto sd = model->state_dict();
  for (const char* k : {"0.weight", "1.pe", "2.layers.0.self_attn.in_proj_weight",
                        "2.layers.1.linear2.bias", "2.norm.weight", "4.weight"})
    EXPECT_EQ(sd.count(k), 1u) << k;
  auto enc = model->at<nn::TransformerEncoder>(2);
  EXPECT_TRUE(enc->layer_list[0]->options.batch_first);
  EXPECT_TRUE(enc->layer_list[1]->options.norm_first);
  EXPECT_EQ(enc->layer_list[0]->options.activation, "gelu");
  EXPECT_NE(b.summary().find("transformer_encoder"), std::string::npos);

  // The fluent calls give the same description.
  nn::ModelBuilder f({4, 8});
  f.embedding(8, 16)
      .positional_encoding("sinusoidal", 64)
      .transformer_encoder(2, 2, 32, 0.0, "gelu", true, 1e-5, true)
      .mean_pool()
      .dense(2);
  EXPECT_EQ(f.output_shape(), b.output_shape());
  EXPECT_EQ(f.num_parameters(), b.num_parameters());

  // The first token and a learned table instead.
  nn::ModelBuilder g({3, 10});
  g.embedding(20, 8)
      .positional_encoding("learned", 10)
      .transformer_encoder(4, 1, 16)
      .select_token();
  EXPECT_EQ(g.output_shape(), (Shape{3, 8}));
  EXPECT_EQ(g.num_parameters(),
            20 * 8 + 10 * 8 + nn::TransformerEncoderLayer(8, 4, 16).num_parameters());
  auto gm = g.build();
  Tensor ids = randint(0, 20, {3, 10});
  gm->eval();
  EXPECT_EQ((*gm)(ids).shape(), (Shape{3, 8}));
  EXPECT_EQ(nn::ModelBuilder::from_json(g.to_json(), 3).to_json(), g.to_json());
}

TEST(TransformerBuilder, TrainsOnTokenContainment) {
  manual_seed(3);
  auto model = nn::ModelBuilder::from_json(kClassifier, 128).build();
  auto [x, y] = contains_three(256, 11);
  auto opt = optim::make_optimizer("adam", model->parameters(), 3e-3);
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    opt->zero_grad();
    Tensor loss = cross_entropy((*model)(x), y);
    loss.backward();
    opt->step();
    last = loss.item<float>();
    if (step == 0) first = last;
  }
  EXPECT_NEAR(first, std::log(2.0), 0.3);  // chance at the start
  EXPECT_LT(last, 0.25 * first) << "loss " << first << " -> " << last;
  // Held-out sequences.
  model->eval();
  auto [xt, yt] = contains_three(256, 12);
  NoGradGuard no_grad;
  EXPECT_GT(accuracy((*model)(xt), yt), 0.9);
}

TEST(TransformerBuilder, Errors) {
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] {
        nn::ModelBuilder({2, 5, 8}).add({{"type", "transformer_encoder"}, {"num_layers", 1}});
      },
      {"layer 0", "transformer_encoder", "nhead"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [] {
        nn::ModelBuilder({2, 5, 8}).add(
            {{"type", "transformer_encoder"}, {"d_model", 16}, {"nhead", 2}, {"num_layers", 1}});
      },
      {"layer 0", "d_model=16", "8"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] {
        nn::ModelBuilder({2, 5, 8}).transformer_encoder(3, 1);
      },
      {"layer 0", "transformer_encoder", "divisible by nhead", "nhead=3"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [] {
        nn::ModelBuilder({2, 8}).transformer_encoder(2, 1);
      },
      {"layer 0", "transformer_encoder", "3 dims", "[2, 8]"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] {
        nn::ModelBuilder({2, 5, 8}).positional_encoding("rotary");
      },
      {"positional_encoding", "sinusoidal", "learned", "rotary"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [] {
        nn::ModelBuilder({2, 50, 8}).positional_encoding("learned", 20);
      },
      {"layer 0", "positional_encoding", "max_len=20"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [] {
        nn::ModelBuilder({2, 8}).mean_pool();
      },
      {"layer 0", "mean_pool", "[2, 8]"}));
}
