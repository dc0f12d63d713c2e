// Positional encodings against their references: the PyTorch tutorial's PositionalEncoding
// (buffer and forward), an nn.Embedding table added to the input, and Hugging Face's Llama
// rotary embedding; gradients; errors.
#include "anvil/nn/nn.h"
#include "support/check.h"
#include "support/module_oracle.h"
#include "support/oracle.h"

using namespace anvil;

namespace {

Tensor input(const Shape& s, uint64_t seed, DType dt = kFloat32) {
  return test::uniform(s, seed, -1, 1, dt);
}

// The tutorial's module (https://pytorch.org/tutorials/beginner/transformer_tutorial.html), with
// its own argument order (d_model, dropout, max_len).
const char* kTutorial = R"(
import math
class PositionalEncoding(torch.nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super().__init__()
        self.dropout = torch.nn.Dropout(p=dropout)
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer('pe', pe)
    def forward(self, x):
        x = x + self.pe[:x.size(0)]
        return self.dropout(x)
)";

}  // namespace

// ---- SinusoidalPositionalEncoding ----

TEST(SinusoidalPositionalEncoding, BufferIsTheTutorials) {
  auto& oracle = test::TorchOracle::get();
  nn::SinusoidalPositionalEncoding small(16, 300);
  ASSERT_EQ(small.pe.shape(), (Shape{300, 1, 16}));
  EXPECT_EQ(small.pe.dtype(), kFloat32);
  Tensor want =
      oracle.run_code(std::string(kTutorial) + "out = PositionalEncoding(16, 0.0, 300).pe")[0];
  EXPECT_TRUE(test::all_close(small.pe, want, 0, 2e-5));
  // The default 5000 positions: float32 angles of up to 5000 rad differ by the rounding of
  // exp's result times t.
  nn::SinusoidalPositionalEncoding full(32);
  EXPECT_EQ(full.max_len, 5000);
  want = oracle.run_code(std::string(kTutorial) + "out = PositionalEncoding(32).pe")[0];
  EXPECT_TRUE(test::all_close(full.pe, want, 0, 2e-3));
  // The formula itself, in float64, where the float32 arguments are exact enough.
  EXPECT_NEAR(small.pe.select(0, 7).select(0, 0).select(0, 4).item<float>(),
              std::sin(7 / std::pow(10000.0, 4.0 / 16)), 1e-6);
  EXPECT_NEAR(small.pe.select(0, 7).select(0, 0).select(0, 5).item<float>(),
              std::cos(7 / std::pow(10000.0, 4.0 / 16)), 1e-6);
  // An odd d_model ends on a sine column.
  nn::SinusoidalPositionalEncoding odd(5, 10);
  EXPECT_NEAR(odd.pe.select(0, 3).select(0, 0).select(0, 4).item<float>(),
              std::sin(3 / std::pow(10000.0, 4.0 / 5)), 1e-6);
  // The buffer is the whole state: the tutorial's state dict.
  auto sd = full.state_dict();
  EXPECT_EQ(sd.size(), 1u);
  EXPECT_EQ(sd.count("pe"), 1u);
}

TEST(SinusoidalPositionalEncoding, ForwardMatchesTheTutorial) {
  nn::SinusoidalPositionalEncoding pe(8, 50);
  Tensor x = input({6, 3, 8}, 1);
  // The tutorial's class, defined inside the constructor expression.
  test::ModuleCase c{.ctor = std::string("(exec(\"\"\"") + kTutorial +
                             "\"\"\", globals()), PositionalEncoding(8, 0.0, 50))[1]",
                     .call = "m(x[0])",
                     .inputs = {x}};
  EXPECT_TRUE(test::module_matches_torch(
      pe, c, [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{pe(in[0])}; }));
  // batch_first and unbatched inputs add the same rows; offset shifts them.
  nn::SinusoidalPositionalEncoding bf(8, 50, 0.0, true);
  Tensor want = pe(x);
  EXPECT_TRUE(test::all_close(bf(x.transpose(0, 1)), want.transpose(0, 1), 0, 0));
  EXPECT_TRUE(test::all_close(pe(x.select(1, 2)), want.select(1, 2), 0, 0));
  EXPECT_TRUE(test::all_close(pe.forward(x.narrow(0, 2, 4), 2), want.narrow(0, 2, 4), 0, 0));
  // Gradients pass straight through.
  Tensor leaf = x.clone().requires_grad_();
  sum(pe(leaf)).backward();
  EXPECT_TRUE(test::all_close(leaf.grad(), ones({6, 3, 8}), 0, 0));
  // Dropout in training mode, none in eval mode.
  nn::SinusoidalPositionalEncoding drop(8, 50, 0.5);
  EXPECT_FALSE(test::all_close(drop(x), want, 1e-6, 1e-6));
  drop.eval();
  EXPECT_TRUE(test::all_close(drop(x), want, 0, 0));
}

// ---- LearnedPositionalEmbedding ----

TEST(LearnedPositionalEmbedding, MatchesAnEmbeddingTableAdded) {
  manual_seed(2);
  nn::LearnedPositionalEmbedding wpe(10, 8);
  EXPECT_EQ(wpe.weight.shape(), (Shape{10, 8}));
  EXPECT_EQ(wpe.state_dict().count("weight"), 1u);
  Tensor x = input({4, 2, 8}, 3);
  // torch: an nn.Embedding(10, 8) (same key) looked up at the positions.
  test::ModuleCase c{.ctor = "torch.nn.Embedding(10, 8)",
                     .call = "x[0] + m(torch.arange(4)).unsqueeze(1)",
                     .inputs = {x}};
  EXPECT_TRUE(test::module_matches_torch(
      wpe, c, [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{wpe(in[0])}; }));
  c.call = "x[0] + m(torch.arange(5, 9)).unsqueeze(1)";
  EXPECT_TRUE(test::module_matches_torch(wpe, c, [&](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{wpe.forward(in[0], 5)};
  }));
  nn::LearnedPositionalEmbedding bf(10, 8, true);
  c.call = "x[0] + m(torch.arange(4)).unsqueeze(0)";
  c.inputs = {input({3, 4, 8}, 4)};
  EXPECT_TRUE(test::module_matches_torch(
      bf, c, [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{bf(in[0])}; }));
  c.call = "x[0] + m(torch.arange(4))";  // unbatched [T, D]
  c.inputs = {input({4, 8}, 5)};
  EXPECT_TRUE(test::module_matches_torch(
      bf, c, [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{bf(in[0])}; }));
}

TEST(PositionalEncoding, Errors) {
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::LearnedPositionalEmbedding(0, 8); },
                                            {"LearnedPositionalEmbedding", "positive", "0"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::SinusoidalPositionalEncoding(8, 10, 2.0); },
                                            {"SinusoidalPositionalEncoding", "dropout", "2"}));
  nn::LearnedPositionalEmbedding wpe(10, 8);
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        wpe(zeros({11, 2, 8}));
      },
      {"LearnedPositionalEmbedding::forward", "positions 0 to 10", "max_len=10"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        wpe.forward(zeros({4, 2, 8}), 7);
      },
      {"LearnedPositionalEmbedding::forward", "positions 7 to 10", "max_len=10"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        wpe(zeros({4, 2, 6}));
      },
      {"LearnedPositionalEmbedding::forward", "[T, N, 8]", "[4, 2, 6]"}));
  nn::SinusoidalPositionalEncoding pe(8, 10, 0.0, true);
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        pe(zeros({2, 3, 4, 8}));
      },
      {"SinusoidalPositionalEncoding::forward", "[N, T, 8]", "[2, 3, 4, 8]"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        pe(zeros({2, 12, 8}));
      },
      {"SinusoidalPositionalEncoding::forward", "max_len=10"}));
}

// ---- RotaryEmbedding ----

TEST(RotaryEmbedding, MatchesHuggingFaceLlama) {
  auto& oracle = test::TorchOracle::get();
  for (double base : {10000.0, 500.0}) {
    nn::RotaryEmbedding rope(16, 64, base);
    Tensor q = input({2, 4, 5, 16}, 6), k = input({2, 2, 5, 16}, 7);  // grouped kv heads
    for (int64_t offset : {0, 9}) {
      auto [qr, kr] = rope.apply(q, k, offset);
      const std::string code =
          "from transformers import LlamaConfig\n"
          "from transformers.models.llama import modeling_llama as ml\n"
          "r = ml.LlamaRotaryEmbedding(LlamaConfig(hidden_size=32, num_attention_heads=2, "
          "max_position_embeddings=64, rope_theta=" +
          std::to_string(base) + "))\n" + "pos = torch.arange(" + std::to_string(offset) + ", " +
          std::to_string(offset + 5) +
          ").unsqueeze(0)\n"
          "cos, sin = r(a, pos)\n"
          "out = list(ml.apply_rotary_pos_emb(a, b, cos, sin))\n";
      auto want = oracle.run_code(code, {q, k});
      EXPECT_TRUE(test::all_close(qr, want[0], 1e-5, 1e-5)) << base << " " << offset;
      EXPECT_TRUE(test::all_close(kr, want[1], 1e-5, 1e-5)) << base << " " << offset;
    }
  }
}

TEST(RotaryEmbedding, TablesGradientsAndErrors) {
  nn::RotaryEmbedding rope(8, 32);
  EXPECT_TRUE(rope.state_dict().empty());  // as Hugging Face's (inv_freq is not persistent)
  auto [c, s] = rope.cos_sin(4, 3);
  auto ref = rotary_cos_sin(7, 8);
  EXPECT_TRUE(test::all_close(c, ref.cos.narrow(0, 3, 4), 0, 0));
  EXPECT_TRUE(test::all_close(s, ref.sin.narrow(0, 3, 4), 0, 0));
  EXPECT_EQ(rope.cos_sin(2, 0, kFloat64).cos.dtype(), kFloat64);
  // A rotation keeps each pair's norm: ||rotate(x)|| = ||x|| row by row.
  Tensor x = input({3, 6, 8}, 8);
  Tensor y = rope.rotate(x, 2);
  EXPECT_TRUE(test::all_close(sum(mul(y, y), {-1}), sum(mul(x, x), {-1}), 1e-5, 1e-6));
  // Position 0 is the identity.
  EXPECT_TRUE(test::all_close(rope(x).narrow(1, 0, 1), x.narrow(1, 0, 1), 1e-6, 1e-7));
  // float64 gradients.
  EXPECT_TRUE(test::gradcheck([&](auto& in) { return rope.rotate(in[0], 5); },
                              {input({2, 3, 8}, 9, kFloat64).requires_grad_()}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::RotaryEmbedding(7); },
                                            {"RotaryEmbedding", "even dim", "7"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        rope.rotate(zeros({2, 3, 6}));
      },
      {"RotaryEmbedding", "[..., T, 8]", "[2, 3, 6]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        rope.apply(zeros({1, 2, 3, 8}), zeros({1, 2, 4, 8}));
      },
      {"RotaryEmbedding::apply", "same sequence length", "[1, 2, 4, 8]"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        rope.rotate(zeros({2, 30, 8}), 3);
      },
      {"RotaryEmbedding", "positions 3 to 32", "max_position=32"}));
}
