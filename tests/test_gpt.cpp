// GPT against Hugging Face transformers' GPT2LMHeadModel: the same state-dict names and
// layouts, the same logits for the same weights (both ways, and through a safetensors file
// written by the safetensors package), greedy generation token for token; the key/value cache
// against the full forward, sampling, activation checkpointing, and bad input.
#include <unistd.h>

#include <filesystem>
#include <map>

#include "anvil/autograd/checkpoint.h"
#include "anvil/io/safetensors.h"
#include "anvil/nn/models/generate.h"
#include "anvil/nn/models/gpt.h"
#include "anvil/nn/registry.h"
#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;

namespace {

nn::GPTConfig tiny(double dropout = 0.0) {
  nn::GPTConfig c;
  c.vocab_size = 97;
  c.n_positions = 32;
  c.n_embd = 24;
  c.n_layer = 2;
  c.n_head = 3;
  c.dropout = dropout;
  return c;
}

// Python that builds the Hugging Face model of config c (dropout off) as `m`, seeded.
std::string hf_model(const nn::GPTConfig& c, int seed = 0) {
  return detail::cat(
      "import transformers\n"
      "torch.manual_seed(",
      seed,
      ")\n"
      "cfg = transformers.GPT2Config(vocab_size=",
      c.vocab_size, ", n_positions=", c.n_positions, ", n_embd=", c.n_embd, ", n_layer=", c.n_layer,
      ", n_head=", c.n_head,
      ", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)\n"
      "m = transformers.GPT2LMHeadModel(cfg).eval()\n");
}

std::string py_names(const StateDict& d) {
  std::string s = "[";
  for (const auto& [k, v] : d) s += "'" + k + "', ";
  return s + "]";
}

Tensor token_ids(const Shape& s, int64_t vocab, uint64_t seed) {
  Generator g(seed);
  return randint(0, vocab, s, kInt64, &g);
}

// The anvil model's state dict in its own order (names as the model lists them).
// Builds a GPT2LMHeadModel from torch seed `seed`, loads its weights into `model` and returns
// what `expr` (Python, over m and the input a) gives on that model.
Tensor with_hf_weights(nn::GPT& model, int seed, const std::string& expr, const Tensor& a) {
  const StateDict names = model.state_dict();
  std::vector<Tensor> got = test::TorchOracle::get().run_code(
      hf_model(model.config(), seed) + "sd = m.state_dict()\nout = [sd[k] for k in " +
          py_names(names) + "] + [" + expr + "]",
      {a});
  StateDict hf;
  size_t i = 0;
  for (const auto& [k, v] : names) hf[k] = got[i++];
  model.load_hf_state_dict(hf);
  return got.back();
}

TEST(Gpt, StateDictNamesAndShapesAreHuggingFaces) {
  nn::GPT model(tiny());
  StateDict mine = model.state_dict();
  // torch returns the names as bytes (the oracle's unit), one tensor per name, then the shapes.
  std::vector<Tensor> theirs = test::TorchOracle::get().run_code(
      hf_model(tiny()) +
      "sd = {k: v for k, v in m.state_dict().items() if not k.endswith(('.attn.bias', "
      "'.attn.masked_bias'))}\n"
      "out = [torch.tensor(list(','.join(sd).encode()), dtype=torch.uint8)]"
      " + [torch.tensor(list(v.shape)) for v in sd.values()]"
      " + [torch.tensor(sum(p.numel() for p in m.parameters()))]\n");
  std::string names;
  for (int64_t c : theirs[0].to(kInt64).to_vector<int64_t>()) names.push_back(char(c));
  // Name -> shape on their side, in their order; ours is sorted by name.
  std::map<std::string, Shape> shapes;
  size_t i = 1, start = 0;
  while (start <= names.size()) {
    size_t end = std::min(names.find(',', start), names.size());
    ASSERT_LT(i, theirs.size());
    Shape s;
    for (int64_t d : theirs[i++].to(kInt64).to_vector<int64_t>()) s.push_back(d);
    shapes[names.substr(start, end - start)] = s;
    start = end + 1;
  }
  ASSERT_EQ(shapes.size(), mine.size());
  for (const auto& [k, v] : mine) {
    ASSERT_TRUE(shapes.count(k)) << k << " is not in Hugging Face's state dict";
    EXPECT_EQ(v.shape(), shapes.at(k)) << k;
  }
  // Tied: the head is the token embedding, one tensor.
  EXPECT_TRUE(model.head_weight.is_same(model.transformer->wte->weight));
  EXPECT_EQ(model.num_parameters(), theirs.back().item<int64_t>());
}

TEST(Gpt, HuggingFaceWeightsGiveHuggingFacesLogits) {
  const nn::GPTConfig c = tiny();
  nn::GPT model(c);
  model.eval();
  Tensor ids = token_ids({2, 11}, c.vocab_size, 3);
  Tensor want = with_hf_weights(model, 1, "m(a).logits", ids);
  Tensor logits = model.forward(ids);
  EXPECT_EQ(logits.shape(), (Shape{2, 11, c.vocab_size}));
  // float32 on both sides, summed in different orders: 1e-4 relative (the bound), with
  // an absolute floor for logits near zero.
  EXPECT_TRUE(test::all_close(logits, want, 1e-4, 1e-5));
}

TEST(Gpt, LoadsASafetensorsFileHuggingFaceWrote) {
  const nn::GPTConfig c = tiny();
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("anvil_gpt_" + std::to_string(getpid()) + ".safetensors"))
                               .string();
  Tensor ids = token_ids({3, 9}, c.vocab_size, 4);
  // safetensors' save_model keeps one name of the tied pair; load_hf_state_dict restores it.
  std::vector<Tensor> want = test::TorchOracle::get().run_code(
      hf_model(c, 2) + "import safetensors.torch\nsafetensors.torch.save_model(m, '" + path +
          "')\nout = [m(a).logits]",
      {ids});
  nn::GPT model(c);
  model.eval();
  model.load_hf_state_dict(io::load_safetensors(path));
  EXPECT_TRUE(test::all_close(model.forward(ids), want[0], 1e-4, 1e-5));
  std::filesystem::remove(path);
}

TEST(Gpt, AnvilWeightsGiveTheSameLogitsAndGradientsInHuggingFace) {
  const nn::GPTConfig c = tiny();
  manual_seed(5);
  nn::GPT model(c);
  model.eval();
  Tensor ids = token_ids({2, 13}, c.vocab_size, 6), targets = token_ids({2, 13}, c.vocab_size, 7);
  Tensor logits = model.forward(ids);
  Tensor loss = cross_entropy(logits.reshape({-1, c.vocab_size}), targets.reshape({-1}));
  loss.backward();
  StateDict sd = model.state_dict();
  std::vector<Tensor> inputs{ids, targets};
  for (const auto& [k, v] : sd) inputs.push_back(v.detach().clone());
  // Strict loading on the torch side: the names and shapes must be Hugging Face's.
  std::vector<Tensor> got = test::TorchOracle::get().run_code(
      hf_model(c) + "m.load_state_dict(dict(zip(" + py_names(sd) +
          ", inputs[2:])), strict=True)\n"
          "y = m(a).logits\n"
          "F.cross_entropy(y.reshape(-1, y.shape[-1]), b.reshape(-1)).backward()\n"
          "P = dict(m.named_parameters())\n"
          "out = [y, P['transformer.h.1.attn.c_attn.weight'].grad, "
          "P['transformer.wte.weight'].grad,"
          " P['transformer.h.0.ln_1.bias'].grad]",
      inputs);
  EXPECT_TRUE(test::all_close(logits, got[0], 1e-4, 1e-5));
  auto& blocks = model.transformer->blocks;
  EXPECT_TRUE(test::all_close(blocks[1]->attn->c_attn->weight.grad(), got[1], 1e-4, 1e-6));
  EXPECT_TRUE(test::all_close(model.transformer->wte->weight.grad(), got[2], 1e-4, 1e-6));
  EXPECT_TRUE(test::all_close(blocks[0]->ln_1->bias.grad(), got[3], 1e-4, 1e-6));
}

TEST(Gpt, GreedyGenerationIsHuggingFaces) {
  const nn::GPTConfig c = tiny();
  nn::GPT model(c);
  Tensor prompt = token_ids({2, 5}, c.vocab_size, 8);
  Tensor want = with_hf_weights(
      model, 3, "m.generate(a, do_sample=False, max_new_tokens=12, pad_token_id=0)", prompt);
  Tensor out = nn::generate(model, prompt, {.max_new_tokens = 12});
  EXPECT_EQ(out.shape(), (Shape{2, 17}));
  EXPECT_EQ(out.to_vector<int64_t>(), want.to(kInt64).to_vector<int64_t>());
  EXPECT_TRUE(model.is_training());  // generate restores the mode
}

TEST(Gpt, CachedDecodingGivesTheFullForwardsLogits) {
  const nn::GPTConfig c = tiny();
  manual_seed(9);
  nn::GPT model(c);
  model.eval();
  Tensor ids = token_ids({2, 12}, c.vocab_size, 10);
  Tensor full_logits = model.forward(ids);
  NoGradGuard no_grad;
  nn::KVCache cache = model.make_cache(2, 16);
  // A prompt of 5, one token, a chunk of 3 (its own causal triangle after the cache), 3 singles.
  std::vector<Tensor> parts;
  for (auto [start, len] :
       std::vector<std::pair<int64_t, int64_t>>{{0, 5}, {5, 1}, {6, 3}, {9, 1}, {10, 1}, {11, 1}})
    parts.push_back(model.forward(ids.narrow(1, start, len), cache));
  EXPECT_EQ(cache.length, 12);
  EXPECT_TRUE(test::all_close(cat(parts, 1), full_logits, 1e-5, 1e-5));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { model.forward(ids.narrow(1, 0, 5), cache); },
                                            {"GPT", "17 tokens", "capacity of 16"}));
}

TEST(Gpt, SamplingIsSeededAndItsFiltersNarrowToGreedy) {
  const nn::GPTConfig c = tiny();
  manual_seed(11);
  nn::GPT model(c);
  Tensor prompt = token_ids({3, 4}, c.vocab_size, 12);
  nn::GenerateOptions o{.max_new_tokens = 10, .do_sample = true, .temperature = 0.8, .seed = 7};
  Tensor a = nn::generate(model, prompt, o), b = nn::generate(model, prompt, o);
  EXPECT_TRUE(equal(a, b));
  o.seed = 8;
  EXPECT_FALSE(equal(a, nn::generate(model, prompt, o)));
  Tensor greedy = nn::generate(model, prompt, {.max_new_tokens = 10});
  o.top_k = 1;
  EXPECT_TRUE(equal(nn::generate(model, prompt, o), greedy));
  o.top_k = 0;
  o.top_p = 1e-6;  // only the most likely token survives
  EXPECT_TRUE(equal(nn::generate(model, prompt, o), greedy));
  // The prompt is kept as given; every new token is in the vocabulary.
  EXPECT_TRUE(equal(a.narrow(1, 0, 4), prompt));
  EXPECT_GE(min(a).item<int64_t>(), 0);
  EXPECT_LT(max(a).item<int64_t>(), c.vocab_size);
}

TEST(Gpt, EndOfTextStopsASequence) {
  const nn::GPTConfig c = tiny();
  manual_seed(13);
  nn::GPT model(c);
  Tensor prompt = token_ids({1, 3}, c.vocab_size, 14);
  Tensor greedy = nn::generate(model, prompt, {.max_new_tokens = 8});
  const int64_t first = greedy.to_vector<int64_t>()[3];
  // With the first generated token as end of text, generation stops right after it.
  Tensor stopped = nn::generate(model, prompt, {.max_new_tokens = 8, .eos_token_id = first});
  EXPECT_EQ(stopped.shape(), (Shape{1, 4}));
  EXPECT_TRUE(equal(stopped, greedy.narrow(1, 0, 4)));
}

TEST(Gpt, GradientCheckpointingGivesTheSameGradients) {
  for (double p : {0.0, 0.2}) {
    SCOPED_TRACE(p);
    nn::GPTConfig c = tiny(p);
    manual_seed(15);
    nn::GPT plain(c);
    c.gradient_checkpointing = true;
    manual_seed(15);
    nn::GPT recomputed(c);
    Tensor ids = token_ids({2, 10}, c.vocab_size, 16), y = token_ids({2, 10}, c.vocab_size, 17);
    auto loss_of = [&](nn::GPT& m) {
      manual_seed(99);  // the same dropout masks in both
      Tensor l = cross_entropy(m.forward(ids).reshape({-1, c.vocab_size}), y.reshape({-1}));
      l.backward();
      return l.item<double>();
    };
    EXPECT_EQ(loss_of(plain), loss_of(recomputed));
    auto a = plain.named_parameters(), b = recomputed.named_parameters();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_TRUE(test::all_close(b[i].second.grad(), a[i].second.grad(), 1e-6, 1e-7))
          << a[i].first;
  }
}

TEST(Gpt, BlockGradcheck) {
  nn::GPTConfig c = tiny();
  c.n_embd = 6;
  c.n_head = 2;
  manual_seed(17);
  nn::GPTBlock block(c);
  block.to(kFloat64);
  Tensor x = test::uniform({2, 4, 6}, 18).requires_grad_();
  EXPECT_TRUE(test::gradcheck([&](auto& in) { return block.forward(in[0]); }, {x}));
  // And through a checkpointed call, with respect to the input and a parameter.
  Tensor w = block.attn->c_attn->weight;
  EXPECT_TRUE(test::gradcheck(
      [&](auto& in) {
        return autograd::checkpoint([&](const auto& v) { return block.forward(v[0]); }, {in[0]},
                                    block.parameters());
      },
      {x}));
  EXPECT_TRUE(w.requires_grad());
}

TEST(Gpt, RegisteredAsGpt) {
  nn::ModulePtr m = nn::make_module(
      "gpt",
      {{"vocab_size", 50}, {"n_positions", 8}, {"n_embd", 8}, {"n_layer", 1}, {"n_head", 2}});
  auto* gpt = dynamic_cast<nn::GPT*>(m.get());
  ASSERT_NE(gpt, nullptr);
  EXPECT_EQ(gpt->config().vocab_size, 50);
  EXPECT_EQ(gpt->forward(token_ids({1, 8}, 50, 1)).shape(), (Shape{1, 8, 50}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] {
        nn::make_module("gpt", {{"n_embd", 10}, {"n_head", 3}});
      },
      {"n_embd (10)", "n_head (3)"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] {
        nn::make_module("gpt", {{"heads", 3}});
      },
      {"unknown field \"heads\""}));
}

TEST(Gpt, BadInput) {
  const nn::GPTConfig c = tiny();
  nn::GPT model(c);
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        model.forward(token_ids({1, 33}, 97, 1));
      },
      {"GPT", "33 tokens", "n_positions = 32"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        model.forward(tensor(std::vector<int64_t>{1, 97}, {1, 2}));
      },
      {"97"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { model.forward(token_ids({5}, 97, 1)); },
                                            {"GPT", "[batch, sequence]", "[5]"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        nn::generate(model, token_ids({1, 30}, 97, 1), {.max_new_tokens = 3});
      },
      {"generate", "30 tokens", "context of 32"}));
}

}  // namespace
