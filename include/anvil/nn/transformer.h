// The Transformer of "Attention Is All You Need", as torch.nn's TransformerEncoderLayer,
// TransformerDecoderLayer, TransformerEncoder, TransformerDecoder and Transformer: the same
// arguments, defaults, argument orders, children and state-dict keys, so a torch state dict
// loads without renaming.
//
//   nn::TransformerEncoderLayer layer(512, 8);                       // torch's defaults
//   auto enc_layer = std::make_shared<nn::TransformerEncoderLayer>(
//       nn::TransformerLayerOptions{.d_model = 64, .nhead = 4, .dim_feedforward = 256,
//                                   .batch_first = true, .norm_first = true});
//   nn::TransformerEncoder encoder(enc_layer, 6);                    // layers.0 ... layers.5
//   Tensor memory = encoder.forward(src, {}, src_key_padding_mask); // [N, S, 64]
//
// Layout: seq-first ([S, N, E] for sources, [T, N, E] for targets) unless batch_first
// ([N, S, E]); unbatched inputs are [S, E]. Masks follow nn::MultiheadAttention: *_mask
// [L, S] or [N * nhead, L, S], *_key_padding_mask [N, S]; bool masks mark what is NOT
// attended to (true = masked out), floating masks are added to the scores. *_is_causal:
// attend only to earlier positions (see MultiheadAttention::forward; the mask may be left out).
//
// Differences from torch: activation is "relu" or "gelu" (no callables); no custom_encoder /
// custom_decoder for Transformer; the *_is_causal defaults are false (torch's None detects a
// causal mask from its values, which only chooses a faster path); and there is no inference
// fast path (torch's nested tensors zero padded positions of TransformerEncoder's output in
// eval mode; anvil computes them as in training mode).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "anvil/nn/dropout.h"
#include "anvil/nn/layer_norm.h"
#include "anvil/nn/linear.h"
#include "anvil/nn/module_list.h"
#include "anvil/nn/multihead_attention.h"

namespace anvil::nn {

// The arguments of TransformerEncoderLayer and TransformerDecoderLayer, with torch's defaults.
struct TransformerLayerOptions {
  int64_t d_model = 0, nhead = 0;  // required
  int64_t dim_feedforward = 2048;
  double dropout = 0.1;
  std::string activation = "relu";  // of the feed-forward block: "relu" or "gelu" (exact)
  double layer_norm_eps = 1e-5;
  bool batch_first = false;
  bool norm_first = false;  // pre-norm (x + f(norm(x))) instead of post-norm (norm(x + f(x)))
  bool bias = true;         // in the linear layers, the attention and the layer norms
};

// Self-attention and a feed-forward block, each with a residual connection and layer norm:
//   post-norm: x = norm1(x + sa(x)); x = norm2(x + ff(x))
//   pre-norm:  x = x + sa(norm1(x)); x = x + ff(norm2(x))
// with sa(x) = dropout1(self_attn(x, x, x)) and ff(x) =
// dropout2(linear2(dropout(act(linear1(x))))). Children, in torch's order: self_attn, linear1,
// dropout, linear2, norm1, norm2, dropout1, dropout2. All parameters keep their modules' default
// initialisation (as torch).
class TransformerEncoderLayer : public Module {
 public:
  // Throws ValueError for sizes below 1, a d_model not divisible by nhead, a dropout outside
  // [0, 1] or an activation other than "relu" and "gelu".
  explicit TransformerEncoderLayer(const TransformerLayerOptions& options);
  TransformerEncoderLayer(int64_t d_model, int64_t nhead, int64_t dim_feedforward = 2048,
                          double dropout = 0.1, const std::string& activation = "relu",
                          double layer_norm_eps = 1e-5, bool batch_first = false,
                          bool norm_first = false, bool bias = true);

  // src [S, N, E] ([N, S, E] batch_first, [S, E] unbatched) -> the same shape. Throws
  // ShapeError naming the layer for a src of another rank or feature size, and the attention's
  // errors for masks.
  Tensor forward(const Tensor& src, const Tensor& src_mask, const Tensor& src_key_padding_mask = {},
                 bool is_causal = false);
  Tensor forward(const Tensor& src) override { return forward(src, Tensor()); }
  std::string extra_repr() const override;

  const TransformerLayerOptions options;
  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2;
  std::shared_ptr<LayerNorm> norm1, norm2;
};

// Self-attention, cross-attention over the encoder's output (memory) and a feed-forward block:
//   post-norm: x = norm1(x + sa(x)); x = norm2(x + mha(x, memory)); x = norm3(x + ff(x))
//   pre-norm:  x = x + sa(norm1(x)); x = x + mha(norm2(x), memory); x = x + ff(norm3(x))
// Children, in torch's order: self_attn, multihead_attn, linear1, dropout, linear2, norm1,
// norm2, norm3, dropout1, dropout2, dropout3.
class TransformerDecoderLayer : public Module {
 public:
  // Throws as TransformerEncoderLayer's constructor.
  explicit TransformerDecoderLayer(const TransformerLayerOptions& options);
  TransformerDecoderLayer(int64_t d_model, int64_t nhead, int64_t dim_feedforward = 2048,
                          double dropout = 0.1, const std::string& activation = "relu",
                          double layer_norm_eps = 1e-5, bool batch_first = false,
                          bool norm_first = false, bool bias = true);

  // tgt [T, N, E], memory [S, N, E] (batch_first: [N, T, E], [N, S, E]; unbatched [T, E],
  // [S, E]) -> [T, N, E]. tgt_mask [T, T] or [N * nhead, T, T] and tgt_key_padding_mask
  // [N, T] apply to the self-attention; memory_mask [T, S] or [N * nhead, T, S] and
  // memory_key_padding_mask [N, S] to the cross-attention. Throws ShapeError naming the layer
  // for a tgt or memory of another rank or feature size.
  Tensor forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask = {},
                 const Tensor& memory_mask = {}, const Tensor& tgt_key_padding_mask = {},
                 const Tensor& memory_key_padding_mask = {}, bool tgt_is_causal = false,
                 bool memory_is_causal = false);
  std::string extra_repr() const override;

  const TransformerLayerOptions options;
  std::shared_ptr<MultiheadAttention> self_attn, multihead_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2, dropout3;
  std::shared_ptr<LayerNorm> norm1, norm2, norm3;
};

// num_layers encoder layers run in turn, then `norm` (any one-tensor module, usually a
// LayerNorm) when given. Children: layers (a ModuleList: keys layers.0.self_attn.in_proj_weight,
// ...) and norm.
class TransformerEncoder : public Module {
 public:
  // As torch, which deep-copies encoder_layer: num_layers new layers with its options, each
  // starting from its parameter values (so all layers start equal; the prototype itself is not
  // kept). Throws ValueError for a null layer or num_layers < 1.
  TransformerEncoder(const std::shared_ptr<TransformerEncoderLayer>& encoder_layer,
                     int64_t num_layers, ModulePtr norm = nullptr);
  // Layers from a factory, called num_layers times (each drawn afresh). Throws ValueError as
  // above and for a factory that returns null.
  TransformerEncoder(const std::function<std::shared_ptr<TransformerEncoderLayer>()>& make_layer,
                     int64_t num_layers, ModulePtr norm = nullptr);

  // src as TransformerEncoderLayer::forward; mask and src_key_padding_mask go to every layer.
  Tensor forward(const Tensor& src, const Tensor& mask, const Tensor& src_key_padding_mask = {},
                 bool is_causal = false);
  Tensor forward(const Tensor& src) override { return forward(src, Tensor()); }
  std::string extra_repr() const override;

  int64_t num_layers;
  std::shared_ptr<ModuleList> layers;
  ModulePtr norm;                                                    // null without one
  std::vector<std::shared_ptr<TransformerEncoderLayer>> layer_list;  // layers, typed
};

// num_layers decoder layers run in turn over (tgt, memory), then `norm` when given. Children:
// layers and norm, as TransformerEncoder.
class TransformerDecoder : public Module {
 public:
  // Deep copies of decoder_layer, as TransformerEncoder.
  TransformerDecoder(const std::shared_ptr<TransformerDecoderLayer>& decoder_layer,
                     int64_t num_layers, ModulePtr norm = nullptr);
  TransformerDecoder(const std::function<std::shared_ptr<TransformerDecoderLayer>()>& make_layer,
                     int64_t num_layers, ModulePtr norm = nullptr);

  // As TransformerDecoderLayer::forward, every layer getting the same memory and masks.
  Tensor forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask = {},
                 const Tensor& memory_mask = {}, const Tensor& tgt_key_padding_mask = {},
                 const Tensor& memory_key_padding_mask = {}, bool tgt_is_causal = false,
                 bool memory_is_causal = false);
  std::string extra_repr() const override;

  int64_t num_layers;
  std::shared_ptr<ModuleList> layers;
  ModulePtr norm;
  std::vector<std::shared_ptr<TransformerDecoderLayer>> layer_list;
};

// The arguments of Transformer, with torch's defaults.
struct TransformerOptions {
  int64_t d_model = 512, nhead = 8;
  int64_t num_encoder_layers = 6, num_decoder_layers = 6;
  int64_t dim_feedforward = 2048;
  double dropout = 0.1;
  std::string activation = "relu";
  double layer_norm_eps = 1e-5;
  bool batch_first = false, norm_first = false, bias = true;
};

// An encoder (num_encoder_layers layers and a final LayerNorm) and a decoder (likewise).
// Children: encoder (encoder.layers.N..., encoder.norm) and decoder (decoder.layers.N...,
// decoder.norm). Every parameter with more than one dim is then drawn by xavier_uniform_, as
// torch's Transformer._reset_parameters does.
class Transformer : public Module {
 public:
  explicit Transformer(const TransformerOptions& options);
  Transformer(int64_t d_model = 512, int64_t nhead = 8, int64_t num_encoder_layers = 6,
              int64_t num_decoder_layers = 6, int64_t dim_feedforward = 2048, double dropout = 0.1,
              const std::string& activation = "relu", double layer_norm_eps = 1e-5,
              bool batch_first = false, bool norm_first = false, bool bias = true);

  // src [S, N, E], tgt [T, N, E] ([N, S, E], [N, T, E] batch_first; unbatched [S, E], [T, E])
  // -> [T, N, E]: memory = encoder(src, src_mask, src_key_padding_mask), then
  // decoder(tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask).
  // Throws ShapeError when src and tgt differ in batch size or their features are not d_model.
  Tensor forward(const Tensor& src, const Tensor& tgt, const Tensor& src_mask = {},
                 const Tensor& tgt_mask = {}, const Tensor& memory_mask = {},
                 const Tensor& src_key_padding_mask = {}, const Tensor& tgt_key_padding_mask = {},
                 const Tensor& memory_key_padding_mask = {}, bool src_is_causal = false,
                 bool tgt_is_causal = false, bool memory_is_causal = false);

  // [sz, sz] with -inf above the diagonal and 0 elsewhere (the causal tgt_mask), in `options`'
  // dtype (float32 by default) and device. Throws ValueError for sz < 0.
  static Tensor generate_square_subsequent_mask(int64_t sz, TensorOptions options = {});
  std::string extra_repr() const override;

  const TransformerOptions options;
  std::shared_ptr<TransformerEncoder> encoder;
  std::shared_ptr<TransformerDecoder> decoder;
};

}  // namespace anvil::nn
