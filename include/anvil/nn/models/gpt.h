// GPT: a decoder-only Transformer language model with the parameter names and layouts of
// Hugging Face transformers' GPT2LMHeadModel, so the GPT-2 files people have load 1:1:
//
//   transformer.wte.weight [V, D]           transformer.wpe.weight [T, D]
//   transformer.h.<i>.ln_1.weight / .bias   transformer.h.<i>.attn.c_attn.weight [D, 3D] / .bias
//   transformer.h.<i>.attn.c_proj.weight [D, D] / .bias
//   transformer.h.<i>.ln_2.weight / .bias   transformer.h.<i>.mlp.c_fc.weight [D, 4D] / .bias
//   transformer.h.<i>.mlp.c_proj.weight [4D, D] / .bias
//   transformer.ln_f.weight / .bias         lm_head.weight [V, D] (the same tensor as wte's when
//   tied)
//
// The projections are Hugging Face's Conv1D: weight [in, out], y = x W + b (the transpose of
// nn::Linear's layout). Each block is pre-norm: x + attn(ln_1(x)), then x + mlp(ln_2(x)), with
// causal multi-head attention (scaled_dot_product_attention) and gelu(approximate="tanh")
// ("gelu_new"). Registered as "gpt" (nn/registry.h) with GPTConfig's fields as arguments.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "anvil/core/state_dict.h"
#include "anvil/nn/dropout.h"
#include "anvil/nn/embedding.h"
#include "anvil/nn/layer_norm.h"
#include "anvil/nn/module.h"
#include "anvil/ops/linear_act.h"

namespace anvil::nn {

// GPT2Config's fields under their Hugging Face names (a single dropout stands for resid_pdrop,
// embd_pdrop and attn_pdrop). The defaults are GPT-2 small's (124M parameters).
struct GPTConfig {
  int64_t vocab_size = 50257;
  int64_t n_positions = 1024;  // the context: the longest sequence the model takes
  int64_t n_embd = 768;
  int64_t n_layer = 12;
  int64_t n_head = 12;
  double dropout = 0.1;
  double layer_norm_epsilon = 1e-5;
  bool tie_word_embeddings = true;  // lm_head.weight is transformer.wte.weight
  bool bias = true;                 // biases in the projections and layer norms (nanoGPT's switch)
  // Recompute each block's activations in the backward instead of keeping them: less memory,
  // one more forward per block (autograd/checkpoint.h).
  bool gradient_checkpointing = false;

  // From a JSON object of these fields (missing ones keep their defaults). Throws ValueError for
  // an unknown field, a non-positive size, n_embd not divisible by n_head, or dropout outside
  // [0, 1).
  static GPTConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  void validate() const;
};

// Hugging Face's Conv1D: weight [in_features, out_features] ~ N(0, 0.02), bias zeros.
class Conv1D : public Module {
 public:
  Conv1D(int64_t in_features, int64_t out_features, bool bias = true);
  // x [..., in] -> act(x W + b) [..., out], one fused op (linear_act).
  Tensor forward(const Tensor& x) override;
  Tensor forward_act(const Tensor& x, Activation act);
  std::string extra_repr() const override;
  int64_t in_features, out_features;
  Tensor weight, bias;
};

// Keys and values of every layer for incremental decoding: layer l's are [B, H, capacity, D/H],
// of which the first `length` positions are filled. Made by GPT::make_cache.
struct KVCache {
  std::vector<Tensor> keys, values;
  int64_t length = 0;
  int64_t capacity() const { return keys.empty() ? 0 : keys[0].size(2); }
};

// Causal self-attention: c_attn projects to q, k, v; c_proj back. With a cache, the new
// positions' keys and values are written at cache.length and attention reads all filled ones.
class GPTAttention : public Module {
 public:
  explicit GPTAttention(const GPTConfig& c);
  Tensor forward(const Tensor& x) override;  // x [B, T, D]
  Tensor forward(const Tensor& x, KVCache* cache, int64_t layer);
  int64_t n_head;
  double dropout;
  std::shared_ptr<Conv1D> c_attn, c_proj;
  std::shared_ptr<Dropout> resid_dropout;
};

class GPTMLP : public Module {
 public:
  explicit GPTMLP(const GPTConfig& c);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<Conv1D> c_fc, c_proj;
  std::shared_ptr<Dropout> dropout;
};

class GPTBlock : public Module {
 public:
  explicit GPTBlock(const GPTConfig& c);
  Tensor forward(const Tensor& x) override;
  Tensor forward(const Tensor& x, KVCache* cache, int64_t layer);
  std::shared_ptr<LayerNorm> ln_1, ln_2;
  std::shared_ptr<GPTAttention> attn;
  std::shared_ptr<GPTMLP> mlp;
};

// GPT2Model: embeddings, the blocks (children "h.0", "h.1", ...) and the final layer norm.
class GPTModel : public Module {
 public:
  explicit GPTModel(const GPTConfig& c);
  // input_ids [B, T] -> hidden states [B, T, D]; positions start at the cache's length.
  Tensor forward(const Tensor& input_ids) override;
  Tensor forward(const Tensor& input_ids, KVCache* cache);
  GPTConfig config;
  std::shared_ptr<Embedding> wte, wpe;
  std::shared_ptr<Dropout> drop;
  std::shared_ptr<Module> h;  // the blocks, named "0" ... "n_layer - 1"
  std::vector<std::shared_ptr<GPTBlock>> blocks;
  std::shared_ptr<LayerNorm> ln_f;
};

// GPT2LMHeadModel.
class GPT : public Module {
 public:
  // Initialised as GPT-2: N(0, 0.02) weights, c_proj weights N(0, 0.02 / sqrt(2 n_layer)),
  // zero biases, unit layer-norm scales. Throws ValueError for a bad config.
  explicit GPT(GPTConfig config = {});
  // input_ids [B, T] (int64 or int32) -> logits [B, T, vocab_size]. Throws ValueError when T
  // exceeds n_positions, IndexError for a token id outside [0, vocab_size) (on CUDA at the next
  // synchronisation, as embedding's device-side check reports it), ShapeError for another rank.
  Tensor forward(const Tensor& input_ids) override;
  // Incremental decoding: logits of the new positions [B, t, V], after the cache's positions;
  // the cache gets their keys and values. Throws ValueError when the cache would overflow or
  // its batch differs. Meant for inference (use under NoGradGuard).
  Tensor forward(const Tensor& input_ids, KVCache& cache);
  // An empty cache for `batch` sequences of up to `capacity` tokens (at most n_positions), on
  // the model's device and in its parameters' dtype (or `dtype`).
  KVCache make_cache(int64_t batch, int64_t capacity, std::optional<DType> dtype = {}) const;

  // Loads a GPT2LMHeadModel state dict (as Hugging Face's save_pretrained or safetensors'
  // save_model write it): the tied lm_head.weight may be absent (or wte's may, when only the
  // head's was kept), and the causal-mask buffers older transformers versions saved
  // (h.<i>.attn.bias, h.<i>.attn.masked_bias) are skipped. Otherwise strict, as
  // Module::load_state_dict.
  void load_hf_state_dict(const StateDict& dict);

  std::string extra_repr() const override;
  const GPTConfig& config() const { return transformer->config; }
  std::shared_ptr<GPTModel> transformer;
  std::shared_ptr<Module> lm_head;  // holds "weight"
  Tensor head_weight;               // lm_head.weight [V, D]
};

}  // namespace anvil::nn
