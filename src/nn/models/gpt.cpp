#include "anvil/nn/models/gpt.h"

#include <cmath>

#include "anvil/autograd/checkpoint.h"
#include "anvil/autograd/grad_mode.h"
#include "anvil/nn/init.h"
#include "anvil/nn/registry.h"
#include "anvil/ops/attention.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/linalg.h"
#include "anvil/ops/linear_act.h"
#include "anvil/ops/mask.h"
#include "nn/repr.h"

namespace anvil::nn {

// ---- GPTConfig ----

GPTConfig GPTConfig::from_json(const nlohmann::json& j) {
  ANVIL_CHECK(j.is_object(), ValueError, "GPTConfig: expected a JSON object, got ", j.dump());
  GPTConfig c;
  for (const auto& [k, v] : j.items()) {
    auto integer = [&](int64_t& field) {
      ANVIL_CHECK(v.is_number_integer(), ValueError, "GPTConfig: \"", k,
                  "\" must be an integer, got ", v.dump());
      field = v.get<int64_t>();
    };
    auto number = [&](double& field) {
      ANVIL_CHECK(v.is_number(), ValueError, "GPTConfig: \"", k, "\" must be a number, got ",
                  v.dump());
      field = v.get<double>();
    };
    auto boolean = [&](bool& field) {
      ANVIL_CHECK(v.is_boolean(), ValueError, "GPTConfig: \"", k, "\" must be true or false, got ",
                  v.dump());
      field = v.get<bool>();
    };
    if (k == "vocab_size")
      integer(c.vocab_size);
    else if (k == "n_positions")
      integer(c.n_positions);
    else if (k == "n_embd")
      integer(c.n_embd);
    else if (k == "n_layer")
      integer(c.n_layer);
    else if (k == "n_head")
      integer(c.n_head);
    else if (k == "dropout")
      number(c.dropout);
    else if (k == "layer_norm_epsilon")
      number(c.layer_norm_epsilon);
    else if (k == "tie_word_embeddings")
      boolean(c.tie_word_embeddings);
    else if (k == "bias")
      boolean(c.bias);
    else if (k == "gradient_checkpointing")
      boolean(c.gradient_checkpointing);
    else
      throw ValueError(
          detail::cat("GPTConfig: unknown field \"", k,
                      "\" (known: vocab_size, n_positions, n_embd, n_layer, n_head, dropout, "
                      "layer_norm_epsilon, tie_word_embeddings, bias, gradient_checkpointing)"));
  }
  c.validate();
  return c;
}

nlohmann::json GPTConfig::to_json() const {
  return {{"vocab_size", vocab_size},
          {"n_positions", n_positions},
          {"n_embd", n_embd},
          {"n_layer", n_layer},
          {"n_head", n_head},
          {"dropout", dropout},
          {"layer_norm_epsilon", layer_norm_epsilon},
          {"tie_word_embeddings", tie_word_embeddings},
          {"bias", bias},
          {"gradient_checkpointing", gradient_checkpointing}};
}

void GPTConfig::validate() const {
  ANVIL_CHECK(vocab_size > 0 && n_positions > 0 && n_embd > 0 && n_layer > 0 && n_head > 0,
              ValueError,
              "GPT: expected positive vocab_size, n_positions, n_embd, n_layer and n_head, got ",
              vocab_size, ", ", n_positions, ", ", n_embd, ", ", n_layer, " and ", n_head);
  ANVIL_CHECK(n_embd % n_head == 0, ValueError, "GPT: n_embd (", n_embd,
              ") must be divisible by n_head (", n_head, ")");
  ANVIL_CHECK(dropout >= 0 && dropout < 1, ValueError, "GPT: expected dropout in [0, 1), got ",
              dropout);
  ANVIL_CHECK(layer_norm_epsilon >= 0, ValueError, "GPT: expected layer_norm_epsilon >= 0, got ",
              layer_norm_epsilon);
}

// ---- Conv1D ----

Conv1D::Conv1D(int64_t in_features, int64_t out_features, bool with_bias)
    : in_features(in_features), out_features(out_features) {
  weight =
      register_parameter("weight", init::normal_(empty({in_features, out_features}), 0.0, 0.02));
  bias = register_parameter("bias", with_bias ? zeros({out_features}) : Tensor());
}

Tensor Conv1D::forward(const Tensor& x) { return forward_act(x, Activation::None); }

Tensor Conv1D::forward_act(const Tensor& x, Activation act) {
  ANVIL_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == in_features, ShapeError,
              "Conv1D::forward: expected input [..., ", in_features, "], got ",
              x.defined() ? "shape " + to_string(x.shape()) : "an undefined tensor");
  // x W = x (W^T)^T: nn::Linear's product with the transposed weight.
  return linear_act(x, weight.t(), bias, act);
}

std::string Conv1D::extra_repr() const {
  return detail::cat("nf=", out_features, ", nx=", in_features);
}

// ---- attention ----

GPTAttention::GPTAttention(const GPTConfig& c) : n_head(c.n_head), dropout(c.dropout) {
  c_attn = register_module("c_attn", std::make_shared<Conv1D>(c.n_embd, 3 * c.n_embd, c.bias));
  c_proj = register_module("c_proj", std::make_shared<Conv1D>(c.n_embd, c.n_embd, c.bias));
  resid_dropout = register_module("resid_dropout", std::make_shared<Dropout>(c.dropout));
}

Tensor GPTAttention::forward(const Tensor& x) { return forward(x, nullptr, 0); }

Tensor GPTAttention::forward(const Tensor& x, KVCache* cache, int64_t layer) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), hd = D / n_head;
  // [B, T, 3D] -> three [B, H, T, hd] views.
  Tensor qkv = c_attn->forward(x).view({B, T, 3, n_head, hd});
  auto head = [&](int64_t i) { return qkv.select(2, i).transpose(1, 2); };
  Tensor q = head(0), k = head(1), v = head(2);
  Tensor y;
  const double p = is_training() ? dropout : 0.0;
  if (!cache) {
    y = scaled_dot_product_attention(q, k, v, Tensor(), p, /*is_causal=*/true);
  } else {
    const int64_t past = cache->length, total = past + T;
    Tensor& kc = cache->keys[size_t(layer)];
    Tensor& vc = cache->values[size_t(layer)];
    kc.narrow(2, past, T).copy_(k);
    vc.narrow(2, past, T).copy_(v);
    Tensor ks = kc.narrow(2, 0, total), vs = vc.narrow(2, 0, total);
    if (past == 0) {
      y = scaled_dot_product_attention(q, ks, vs, Tensor(), p, /*is_causal=*/true);
    } else if (T == 1) {  // the newest position sees every one before it
      y = scaled_dot_product_attention(q, ks, vs, Tensor(), p);
    } else {  // query i sits at position past + i: the causal triangle aligned at the bottom
      Tensor mask = tril(ones({T, total}, TensorOptions(kBool).device(x.device())), past);
      y = scaled_dot_product_attention(q, ks, vs, mask, p);
    }
  }
  y = y.transpose(1, 2).reshape({B, T, D});
  return resid_dropout->forward(c_proj->forward(y));
}

// ---- MLP and block ----

GPTMLP::GPTMLP(const GPTConfig& c) {
  c_fc = register_module("c_fc", std::make_shared<Conv1D>(c.n_embd, 4 * c.n_embd, c.bias));
  c_proj = register_module("c_proj", std::make_shared<Conv1D>(4 * c.n_embd, c.n_embd, c.bias));
  dropout = register_module("dropout", std::make_shared<Dropout>(c.dropout));
}

Tensor GPTMLP::forward(const Tensor& x) {
  return dropout->forward(c_proj->forward(c_fc->forward_act(x, Activation::GeluTanh)));
}

GPTBlock::GPTBlock(const GPTConfig& c) {
  ln_1 = register_module("ln_1",
                         std::make_shared<LayerNorm>(c.n_embd, c.layer_norm_epsilon, true, c.bias));
  attn = register_module("attn", std::make_shared<GPTAttention>(c));
  ln_2 = register_module("ln_2",
                         std::make_shared<LayerNorm>(c.n_embd, c.layer_norm_epsilon, true, c.bias));
  mlp = register_module("mlp", std::make_shared<GPTMLP>(c));
}

Tensor GPTBlock::forward(const Tensor& x) { return forward(x, nullptr, 0); }

Tensor GPTBlock::forward(const Tensor& x, KVCache* cache, int64_t layer) {
  Tensor h = add(x, attn->forward(ln_1->forward(x), cache, layer));
  return add(h, mlp->forward(ln_2->forward(h)));
}

// ---- GPTModel ----

GPTModel::GPTModel(const GPTConfig& c) : config(c) {
  c.validate();
  wte = register_module("wte", std::make_shared<Embedding>(c.vocab_size, c.n_embd));
  wpe = register_module("wpe", std::make_shared<Embedding>(c.n_positions, c.n_embd));
  drop = register_module("drop", std::make_shared<Dropout>(c.dropout));
  h = register_module("h", std::make_shared<Module>());
  for (int64_t i = 0; i < c.n_layer; ++i)
    blocks.push_back(h->register_module(std::to_string(i), std::make_shared<GPTBlock>(c)));
  ln_f = register_module("ln_f",
                         std::make_shared<LayerNorm>(c.n_embd, c.layer_norm_epsilon, true, c.bias));
}

Tensor GPTModel::forward(const Tensor& input_ids) { return forward(input_ids, nullptr); }

Tensor GPTModel::forward(const Tensor& ids, KVCache* cache) {
  ANVIL_CHECK(ids.defined() && ids.dim() == 2, ShapeError,
              "GPT: expected input_ids [batch, sequence], got ",
              ids.defined() ? "shape " + to_string(ids.shape()) : "an undefined tensor");
  const int64_t T = ids.size(1), past = cache ? cache->length : 0;
  ANVIL_CHECK(past + T <= config.n_positions, ValueError, "GPT: a sequence of ", past + T,
              " tokens is longer than the context (n_positions = ", config.n_positions, ")");
  Tensor pos = arange(past, past + T, 1, TensorOptions(kInt64).device(ids.device()));
  Tensor x = drop->forward(add(wte->forward(ids), wpe->forward(pos)));
  const bool recompute = config.gradient_checkpointing && !cache && is_training();
  for (size_t i = 0; i < blocks.size(); ++i) {
    GPTBlock& b = *blocks[i];
    if (recompute)
      x = autograd::checkpoint([&b](const std::vector<Tensor>& in) { return b.forward(in[0]); },
                               {x}, b.parameters());
    else
      x = b.forward(x, cache, int64_t(i));
  }
  if (cache) cache->length += T;
  return ln_f->forward(x);
}

// ---- GPT ----

GPT::GPT(GPTConfig c) {
  transformer = register_module("transformer", std::make_shared<GPTModel>(c));
  lm_head = register_module("lm_head", std::make_shared<Module>());
  // Initialisation of GPT-2 (and of nanoGPT): N(0, 0.02) everywhere, residual projections
  // scaled down by sqrt(2 n_layer) so the residual stream's variance does not grow with depth.
  for (auto& [name, p] : transformer->named_parameters()) {
    NoGradGuard no_grad;
    if (name.find("ln_") != std::string::npos) continue;  // layer norms: ones and zeros
    if (name.ends_with(".bias")) {
      init::zeros_(p);
    } else {
      const bool residual = name.ends_with("c_proj.weight");
      init::normal_(p, 0.0, residual ? 0.02 / std::sqrt(2.0 * double(c.n_layer)) : 0.02);
    }
  }
  head_weight = lm_head->register_parameter(
      "weight", c.tie_word_embeddings ? transformer->wte->weight
                                      : init::normal_(empty({c.vocab_size, c.n_embd}), 0.0, 0.02));
}

Tensor GPT::forward(const Tensor& input_ids) {
  Tensor hidden = transformer->forward(input_ids, nullptr);
  return linear(hidden, head_weight);
}

Tensor GPT::forward(const Tensor& input_ids, KVCache& cache) {
  ANVIL_CHECK(cache.keys.size() == size_t(config().n_layer), ValueError, "GPT: the cache holds ",
              cache.keys.size(), " layers, the model ", config().n_layer,
              " (make it with make_cache)");
  ANVIL_CHECK(input_ids.dim() == 2 && input_ids.size(0) == cache.keys[0].size(0), ValueError,
              "GPT: the cache is for a batch of ", cache.keys[0].size(0),
              ", got input_ids of shape ", to_string(input_ids.shape()));
  ANVIL_CHECK(cache.length + input_ids.size(1) <= cache.capacity(), ValueError,
              "GPT: ", cache.length + input_ids.size(1),
              " tokens overflow the cache's capacity of ", cache.capacity());
  Tensor hidden = transformer->forward(input_ids, &cache);
  return linear(hidden, head_weight);
}

KVCache GPT::make_cache(int64_t batch, int64_t capacity, std::optional<DType> dtype) const {
  const GPTConfig& c = config();
  ANVIL_CHECK(batch > 0 && capacity > 0 && capacity <= c.n_positions, ValueError,
              "GPT::make_cache: expected batch > 0 and capacity in [1, n_positions = ",
              c.n_positions, "], got ", batch, " and ", capacity);
  const Tensor& w = transformer->wte->weight;
  TensorOptions o = TensorOptions(dtype.value_or(w.dtype())).device(w.device());
  KVCache cache;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    cache.keys.push_back(zeros({batch, c.n_head, capacity, c.n_embd / c.n_head}, o));
    cache.values.push_back(zeros({batch, c.n_head, capacity, c.n_embd / c.n_head}, o));
  }
  return cache;
}

void GPT::load_hf_state_dict(const StateDict& dict) {
  StateDict d;
  for (const auto& [k, v] : dict)
    if (!k.ends_with(".attn.bias") && !k.ends_with(".attn.masked_bias")) d[k] = v;
  if (config().tie_word_embeddings) {
    const bool head = d.count("lm_head.weight"), wte = d.count("transformer.wte.weight");
    if (head && !wte) d["transformer.wte.weight"] = d.at("lm_head.weight");
    if (wte && !head) d["lm_head.weight"] = d.at("transformer.wte.weight");
  }
  load_state_dict(d, true);
}

std::string GPT::extra_repr() const { return config().to_json().dump(); }

namespace {
const ModuleRegistrar kRegisterGpt("gpt", [](const nlohmann::json& args) -> ModulePtr {
  return std::make_shared<GPT>(GPTConfig::from_json(args));
});
}  // namespace

}  // namespace anvil::nn
