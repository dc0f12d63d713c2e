// Multi-head attention, as torch.nn.MultiheadAttention: the queries, keys and values are
// projected into num_heads heads of head_dim = embed_dim / num_heads features, each head
// attends (softmax(q k^T / sqrt(head_dim) + mask) v), and the heads are concatenated and
// projected back by out_proj.
//
//   nn::MultiheadAttention mha(64, 8);                 // seq-first: [L, N, E] as torch's default
//   auto [out, weights] = mha(q, k, v);                // out [L, N, 64], weights [N, L, S]
//   Tensor y = mha(x);                                 // self-attention (x, x, x), no weights
//   nn::MultiheadAttention bf(64, 8, {.batch_first = true});  // [N, L, E]
//
// Parameters and state-dict keys are torch's: in_proj_weight [3E, E] (the q, k and v
// projections stacked) when kdim == vdim == embed_dim, else q_proj_weight [E, E],
// k_proj_weight [E, kdim] and v_proj_weight [E, vdim]; in_proj_bias [3E] with bias;
// bias_k and bias_v [1, 1, E] with add_bias_kv; and the child out_proj, a Linear(E, E, bias)
// (out_proj.weight, out_proj.bias). Initialisation is torch's: xavier_uniform_ on the input
// projection weights, zeros for in_proj_bias and out_proj.bias, xavier_normal_ for bias_k and
// bias_v, and Linear's default for out_proj.weight.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "anvil/nn/linear.h"
#include "anvil/nn/module.h"

namespace anvil::nn {

// The constructor's arguments after embed_dim and num_heads, for designated initialisers.
struct MultiheadAttentionOptions {
  double dropout = 0.0;        // on the attention probabilities, in training mode
  bool bias = true;            // in_proj_bias and out_proj.bias
  bool add_bias_kv = false;    // learned bias_k, bias_v appended to the keys and values
  bool add_zero_attn = false;  // a zero key and value appended after the projection
  std::optional<int64_t> kdim = std::nullopt;  // key features; unset: embed_dim
  std::optional<int64_t> vdim = std::nullopt;  // value features; unset: embed_dim
  bool batch_first = false;                    // [N, L, E] instead of [L, N, E]
};

class MultiheadAttention : public Module {
 public:
  // attn_output: [L, N, E] ([N, L, E] when batch_first; [L, E] for unbatched input).
  // attn_weights: the attention probabilities, [N, L, S] averaged over the heads, or
  // [N, num_heads, L, S] per head ([L, S] / [num_heads, L, S] unbatched); undefined when
  // need_weights is false. Binds as `auto [out, weights] = mha(q, k, v);`.
  struct Output {
    Tensor attn_output, attn_weights;
  };

  // Throws ValueError for embed_dim or num_heads below 1, an embed_dim not divisible by
  // num_heads, kdim or vdim below 1, or dropout outside [0, 1].
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout = 0.0, bool bias = true,
                     bool add_bias_kv = false, bool add_zero_attn = false,
                     std::optional<int64_t> kdim = std::nullopt,
                     std::optional<int64_t> vdim = std::nullopt, bool batch_first = false);
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, const MultiheadAttentionOptions& opts);

  // Shapes (batched, seq-first; batch_first swaps the first two dims of query, key, value and
  // attn_output): query [L, N, E], key [S, N, kdim], value [S, N, vdim]; unbatched [L, E],
  // [S, kdim], [S, vdim].
  // key_padding_mask [N, S] ([S] unbatched): bool, true = the key is padding and is ignored
  //   (torch's MultiheadAttention convention, the opposite of scaled_dot_product_attention's
  //   bool masks), or floating, added to the scores.
  // attn_mask [L, S] or [N * num_heads, L, S] ([num_heads, L, S] unbatched): bool, true = the
  //   query may not attend to that key, or floating, added to the scores. Both masks combine
  //   by addition (a bool mask becomes 0 / -inf in query's dtype, a floating one is converted
  //   to query's dtype). A query whose every key is masked gets NaN weights when need_weights
  //   (as torch), and zeros without weights (as torch's scaled_dot_product_attention).
  // need_weights: also return attn_weights (computed explicitly: the [N, H, L, S] scores are
  //   materialised). Without it the heads run through scaled_dot_product_attention, which
  //   uses a fused kernel where the device has one for the case.
  // is_causal: query i attends to keys j <= i. As in torch, with an attn_mask it is a hint
  //   that the mask is the causal one (without key_padding_mask and need_weights the mask is
  //   then dropped and scaled_dot_product_attention's is_causal used); unlike torch, without
  //   attn_mask it builds the causal mask instead of refusing.
  // Dropout (training mode, dropout > 0) is applied to the attention probabilities.
  // Throws ShapeError naming the argument, the expected and the actual shape for inputs of
  // the wrong rank, features, batch or sequence sizes, and masks of the wrong shape;
  // DTypeError for masks that are neither bool nor floating.
  Output forward(const Tensor& query, const Tensor& key, const Tensor& value,
                 const Tensor& key_padding_mask = {}, bool need_weights = true,
                 const Tensor& attn_mask = {}, bool average_attn_weights = true,
                 bool is_causal = false);
  Output operator()(const Tensor& query, const Tensor& key, const Tensor& value,
                    const Tensor& key_padding_mask = {}, bool need_weights = true,
                    const Tensor& attn_mask = {}, bool average_attn_weights = true,
                    bool is_causal = false) {
    return forward(query, key, value, key_padding_mask, need_weights, attn_mask,
                   average_attn_weights, is_causal);
  }
  // Self-attention without masks or weights: forward(x, x, x, {}, false).attn_output. This is
  // the one-tensor forward that Sequential calls.
  Tensor forward(const Tensor& x) override;
  using Module::operator();

  // Draws the initial values again (as torch's _reset_parameters, plus out_proj.weight).
  void reset_parameters();
  // "embed_dim=64, num_heads=8, dropout=0.0, bias=true, batch_first=false" (+ kdim, vdim,
  // add_bias_kv, add_zero_attn when not the defaults).
  std::string extra_repr() const override;

  int64_t embed_dim, kdim, vdim, num_heads, head_dim;
  double dropout;
  bool batch_first, add_zero_attn;
  bool qkv_same_embed_dim;  // kdim == vdim == embed_dim: one packed in_proj_weight
  Tensor in_proj_weight;    // [3E, E], or undefined
  Tensor q_proj_weight, k_proj_weight, v_proj_weight;  // [E, E], [E, kdim], [E, vdim], or undefined
  Tensor in_proj_bias;                                 // [3E], or undefined without bias
  Tensor bias_k, bias_v;                               // [1, 1, E], or undefined
  std::shared_ptr<Linear> out_proj;
};

}  // namespace anvil::nn
