// Transformer layers and stacks, as torch.nn.modules.transformer.
#include "anvil/nn/transformer.h"

#include <cmath>
#include <limits>

#include "anvil/nn/init.h"
#include "anvil/ops/activation.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/mask.h"
#include "nn/repr.h"

namespace anvil::nn {
namespace {

void check_options(const char* layer, const TransformerLayerOptions& o) {
  ANVIL_CHECK(o.d_model > 0 && o.nhead > 0 && o.dim_feedforward > 0, ValueError, layer,
              ": expected positive d_model, nhead and dim_feedforward, got d_model=", o.d_model,
              ", nhead=", o.nhead, " and dim_feedforward=", o.dim_feedforward);
  ANVIL_CHECK(o.d_model % o.nhead == 0, ValueError, layer,
              ": expected d_model divisible by nhead, got d_model=", o.d_model,
              " and nhead=", o.nhead);
  ANVIL_CHECK(o.dropout >= 0 && o.dropout <= 1, ValueError, layer,
              ": expected a dropout probability between 0 and 1, got ", o.dropout);
  ANVIL_CHECK(o.activation == "relu" || o.activation == "gelu", ValueError, layer,
              ": expected activation \"relu\" or \"gelu\", got \"", o.activation, "\"");
}

std::shared_ptr<MultiheadAttention> attention(const TransformerLayerOptions& o) {
  return std::make_shared<MultiheadAttention>(
      o.d_model, o.nhead,
      MultiheadAttentionOptions{
          .dropout = o.dropout, .bias = o.bias, .batch_first = o.batch_first});
}

std::shared_ptr<LayerNorm> layer_norm_of(const TransformerLayerOptions& o) {
  return std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps, true, o.bias);
}

Tensor activate(const Tensor& x, const std::string& activation) {
  return activation == "relu" ? relu(x) : gelu(x);
}

// A sequence input [S, N, E] / [N, S, E] / [S, E] of d_model features.
void check_sequence(const char* op, const char* name, const Tensor& t,
                    const TransformerLayerOptions& o) {
  ANVIL_CHECK(t.defined() && (t.dim() == 2 || t.dim() == 3) && t.size(-1) == o.d_model, ShapeError,
              op, ": expected ", name, " ", o.batch_first ? "[N, S, " : "[S, N, ", o.d_model,
              "] (batched) or [S, ", o.d_model, "] (unbatched), got ",
              t.defined() ? "shape " + to_string(t.shape()) : std::string("an undefined tensor"));
}

std::string options_repr(const TransformerLayerOptions& o) {
  return detail::cat("d_model=", o.d_model, ", nhead=", o.nhead,
                     ", dim_feedforward=", o.dim_feedforward, ", dropout=", detail::repr(o.dropout),
                     ", activation=", o.activation,
                     ", layer_norm_eps=", detail::repr(o.layer_norm_eps),
                     ", batch_first=", detail::repr(o.batch_first),
                     ", norm_first=", detail::repr(o.norm_first), ", bias=", detail::repr(o.bias));
}

TransformerLayerOptions layer_options(int64_t d_model, int64_t nhead, int64_t dim_feedforward,
                                      double dropout, const std::string& activation,
                                      double layer_norm_eps, bool batch_first, bool norm_first,
                                      bool bias) {
  return {d_model,        nhead,       dim_feedforward, dropout, activation,
          layer_norm_eps, batch_first, norm_first,      bias};
}

// torch's copy.deepcopy of a layer: the same options and values, and the same mode.
template <class Layer>
std::shared_ptr<Layer> deep_copy(const Layer& prototype) {
  auto copy = std::make_shared<Layer>(prototype.options);
  copy->load_state_dict(prototype.state_dict());
  copy->train(prototype.is_training());
  return copy;
}

}  // namespace

// ---- TransformerEncoderLayer ----

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerLayerOptions& o) : options(o) {
  check_options("TransformerEncoderLayer", o);
  self_attn = register_module("self_attn", attention(o));
  linear1 =
      register_module("linear1", std::make_shared<Linear>(o.d_model, o.dim_feedforward, o.bias));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout));
  linear2 =
      register_module("linear2", std::make_shared<Linear>(o.dim_feedforward, o.d_model, o.bias));
  norm1 = register_module("norm1", layer_norm_of(o));
  norm2 = register_module("norm2", layer_norm_of(o));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(o.dropout));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(o.dropout));
}

TransformerEncoderLayer::TransformerEncoderLayer(int64_t d_model, int64_t nhead,
                                                 int64_t dim_feedforward, double dropout,
                                                 const std::string& activation,
                                                 double layer_norm_eps, bool batch_first,
                                                 bool norm_first, bool bias)
    : TransformerEncoderLayer(layer_options(d_model, nhead, dim_feedforward, dropout, activation,
                                            layer_norm_eps, batch_first, norm_first, bias)) {}

Tensor TransformerEncoderLayer::forward(const Tensor& src, const Tensor& src_mask,
                                        const Tensor& src_key_padding_mask, bool is_causal) {
  check_sequence("TransformerEncoderLayer::forward", "src", src, options);
  auto sa = [&](const Tensor& x) {
    return (*dropout1)(
        self_attn->forward(x, x, x, src_key_padding_mask, false, src_mask, true, is_causal)
            .attn_output);
  };
  auto ff = [&](const Tensor& x) {
    return (*dropout2)((*linear2)((*dropout)(activate((*linear1)(x), options.activation))));
  };
  Tensor x = src;
  if (options.norm_first) {
    x = x + sa((*norm1)(x));
    x = x + ff((*norm2)(x));
  } else {
    x = (*norm1)(x + sa(x));
    x = (*norm2)(x + ff(x));
  }
  return x;
}

std::string TransformerEncoderLayer::extra_repr() const { return options_repr(options); }

// ---- TransformerDecoderLayer ----

TransformerDecoderLayer::TransformerDecoderLayer(const TransformerLayerOptions& o) : options(o) {
  check_options("TransformerDecoderLayer", o);
  self_attn = register_module("self_attn", attention(o));
  multihead_attn = register_module("multihead_attn", attention(o));
  linear1 =
      register_module("linear1", std::make_shared<Linear>(o.d_model, o.dim_feedforward, o.bias));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout));
  linear2 =
      register_module("linear2", std::make_shared<Linear>(o.dim_feedforward, o.d_model, o.bias));
  norm1 = register_module("norm1", layer_norm_of(o));
  norm2 = register_module("norm2", layer_norm_of(o));
  norm3 = register_module("norm3", layer_norm_of(o));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(o.dropout));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(o.dropout));
  dropout3 = register_module("dropout3", std::make_shared<Dropout>(o.dropout));
}

TransformerDecoderLayer::TransformerDecoderLayer(int64_t d_model, int64_t nhead,
                                                 int64_t dim_feedforward, double dropout,
                                                 const std::string& activation,
                                                 double layer_norm_eps, bool batch_first,
                                                 bool norm_first, bool bias)
    : TransformerDecoderLayer(layer_options(d_model, nhead, dim_feedforward, dropout, activation,
                                            layer_norm_eps, batch_first, norm_first, bias)) {}

Tensor TransformerDecoderLayer::forward(const Tensor& tgt, const Tensor& memory,
                                        const Tensor& tgt_mask, const Tensor& memory_mask,
                                        const Tensor& tgt_key_padding_mask,
                                        const Tensor& memory_key_padding_mask, bool tgt_is_causal,
                                        bool memory_is_causal) {
  const char* op = "TransformerDecoderLayer::forward";
  check_sequence(op, "tgt", tgt, options);
  check_sequence(op, "memory", memory, options);
  ANVIL_CHECK(memory.dim() == tgt.dim(), ShapeError, op, ": expected memory of tgt's rank ",
              tgt.dim(), ", got tgt ", to_string(tgt.shape()), " and memory ",
              to_string(memory.shape()));
  auto sa = [&](const Tensor& x) {
    return (*dropout1)(
        self_attn->forward(x, x, x, tgt_key_padding_mask, false, tgt_mask, true, tgt_is_causal)
            .attn_output);
  };
  auto mha = [&](const Tensor& x) {
    return (*dropout2)(multihead_attn
                           ->forward(x, memory, memory, memory_key_padding_mask, false, memory_mask,
                                     true, memory_is_causal)
                           .attn_output);
  };
  auto ff = [&](const Tensor& x) {
    return (*dropout3)((*linear2)((*dropout)(activate((*linear1)(x), options.activation))));
  };
  Tensor x = tgt;
  if (options.norm_first) {
    x = x + sa((*norm1)(x));
    x = x + mha((*norm2)(x));
    x = x + ff((*norm3)(x));
  } else {
    x = (*norm1)(x + sa(x));
    x = (*norm2)(x + mha(x));
    x = (*norm3)(x + ff(x));
  }
  return x;
}

std::string TransformerDecoderLayer::extra_repr() const { return options_repr(options); }

// ---- TransformerEncoder ----

TransformerEncoder::TransformerEncoder(
    const std::function<std::shared_ptr<TransformerEncoderLayer>()>& make_layer, int64_t num_layers,
    ModulePtr norm)
    : num_layers(num_layers), norm(std::move(norm)) {
  ANVIL_CHECK(make_layer != nullptr, ValueError, "TransformerEncoder: expected a layer factory");
  ANVIL_CHECK(num_layers >= 1, ValueError, "TransformerEncoder: expected num_layers >= 1, got ",
              num_layers);
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < num_layers; ++i) {
    auto layer = make_layer();
    ANVIL_CHECK(layer != nullptr, ValueError,
                "TransformerEncoder: the factory returned a null layer");
    layers->push_back(layer);
    layer_list.push_back(std::move(layer));
  }
  if (this->norm) register_module("norm", this->norm);
}

TransformerEncoder::TransformerEncoder(
    const std::shared_ptr<TransformerEncoderLayer>& encoder_layer, int64_t num_layers,
    ModulePtr norm)
    : TransformerEncoder(
          [&]() {
            ANVIL_CHECK(encoder_layer != nullptr, ValueError,
                        "TransformerEncoder: expected an encoder_layer, got null");
            return deep_copy(*encoder_layer);
          },
          num_layers, std::move(norm)) {}

Tensor TransformerEncoder::forward(const Tensor& src, const Tensor& mask,
                                   const Tensor& src_key_padding_mask, bool is_causal) {
  Tensor x = src;
  for (auto& layer : layer_list) x = layer->forward(x, mask, src_key_padding_mask, is_causal);
  return norm ? (*norm)(x) : x;
}

std::string TransformerEncoder::extra_repr() const {
  return detail::cat("num_layers=", num_layers);
}

// ---- TransformerDecoder ----

TransformerDecoder::TransformerDecoder(
    const std::function<std::shared_ptr<TransformerDecoderLayer>()>& make_layer, int64_t num_layers,
    ModulePtr norm)
    : num_layers(num_layers), norm(std::move(norm)) {
  ANVIL_CHECK(make_layer != nullptr, ValueError, "TransformerDecoder: expected a layer factory");
  ANVIL_CHECK(num_layers >= 1, ValueError, "TransformerDecoder: expected num_layers >= 1, got ",
              num_layers);
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < num_layers; ++i) {
    auto layer = make_layer();
    ANVIL_CHECK(layer != nullptr, ValueError,
                "TransformerDecoder: the factory returned a null layer");
    layers->push_back(layer);
    layer_list.push_back(std::move(layer));
  }
  if (this->norm) register_module("norm", this->norm);
}

TransformerDecoder::TransformerDecoder(
    const std::shared_ptr<TransformerDecoderLayer>& decoder_layer, int64_t num_layers,
    ModulePtr norm)
    : TransformerDecoder(
          [&]() {
            ANVIL_CHECK(decoder_layer != nullptr, ValueError,
                        "TransformerDecoder: expected a decoder_layer, got null");
            return deep_copy(*decoder_layer);
          },
          num_layers, std::move(norm)) {}

Tensor TransformerDecoder::forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask,
                                   const Tensor& memory_mask, const Tensor& tgt_key_padding_mask,
                                   const Tensor& memory_key_padding_mask, bool tgt_is_causal,
                                   bool memory_is_causal) {
  Tensor x = tgt;
  for (auto& layer : layer_list)
    x = layer->forward(x, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
                       memory_key_padding_mask, tgt_is_causal, memory_is_causal);
  return norm ? (*norm)(x) : x;
}

std::string TransformerDecoder::extra_repr() const {
  return detail::cat("num_layers=", num_layers);
}

// ---- Transformer ----

Transformer::Transformer(const TransformerOptions& o) : options(o) {
  ANVIL_CHECK(o.num_encoder_layers >= 1 && o.num_decoder_layers >= 1, ValueError,
              "Transformer: expected num_encoder_layers and num_decoder_layers >= 1, got ",
              o.num_encoder_layers, " and ", o.num_decoder_layers);
  const TransformerLayerOptions lo{o.d_model,     o.nhead,      o.dim_feedforward,
                                   o.dropout,     o.activation, o.layer_norm_eps,
                                   o.batch_first, o.norm_first, o.bias};
  encoder = register_module(
      "encoder", std::make_shared<TransformerEncoder>(
                     std::make_shared<TransformerEncoderLayer>(lo), o.num_encoder_layers,
                     std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps, true, o.bias)));
  decoder = register_module(
      "decoder", std::make_shared<TransformerDecoder>(
                     std::make_shared<TransformerDecoderLayer>(lo), o.num_decoder_layers,
                     std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps, true, o.bias)));
  for (const Tensor& p : parameters())
    if (p.dim() > 1) init::xavier_uniform_(p);
}

Transformer::Transformer(int64_t d_model, int64_t nhead, int64_t num_encoder_layers,
                         int64_t num_decoder_layers, int64_t dim_feedforward, double dropout,
                         const std::string& activation, double layer_norm_eps, bool batch_first,
                         bool norm_first, bool bias)
    : Transformer(TransformerOptions{d_model, nhead, num_encoder_layers, num_decoder_layers,
                                     dim_feedforward, dropout, activation, layer_norm_eps,
                                     batch_first, norm_first, bias}) {}

Tensor Transformer::forward(const Tensor& src, const Tensor& tgt, const Tensor& src_mask,
                            const Tensor& tgt_mask, const Tensor& memory_mask,
                            const Tensor& src_key_padding_mask, const Tensor& tgt_key_padding_mask,
                            const Tensor& memory_key_padding_mask, bool src_is_causal,
                            bool tgt_is_causal, bool memory_is_causal) {
  const char* op = "Transformer::forward";
  ANVIL_CHECK(src.defined() && tgt.defined() && src.dim() == tgt.dim() &&
                  (src.dim() == 2 || src.dim() == 3),
              ShapeError, op, ": expected src and tgt both batched (3 dims) or both unbatched ",
              "(2 dims), got src ", src.defined() ? to_string(src.shape()) : "undefined",
              " and tgt ", tgt.defined() ? to_string(tgt.shape()) : "undefined");
  const int64_t batch_dim = options.batch_first ? 0 : 1;
  ANVIL_CHECK(src.dim() == 2 || src.size(batch_dim) == tgt.size(batch_dim), ShapeError, op,
              ": expected src and tgt of the same batch size, got src ", to_string(src.shape()),
              " and tgt ", to_string(tgt.shape()),
              options.batch_first ? " (batch_first: dim 0)" : " (dim 1)");
  ANVIL_CHECK(src.size(-1) == options.d_model && tgt.size(-1) == options.d_model, ShapeError, op,
              ": expected src and tgt with d_model=", options.d_model, " features, got src ",
              to_string(src.shape()), " and tgt ", to_string(tgt.shape()));
  Tensor memory = encoder->forward(src, src_mask, src_key_padding_mask, src_is_causal);
  return decoder->forward(tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
                          memory_key_padding_mask, tgt_is_causal, memory_is_causal);
}

Tensor Transformer::generate_square_subsequent_mask(int64_t sz, TensorOptions options) {
  ANVIL_CHECK(sz >= 0, ValueError,
              "Transformer::generate_square_subsequent_mask: expected sz >= 0, got ", sz);
  return triu(full({sz, sz}, -std::numeric_limits<double>::infinity(), options), 1);
}

std::string Transformer::extra_repr() const {
  return detail::cat("d_model=", options.d_model, ", nhead=", options.nhead,
                     ", batch_first=", detail::repr(options.batch_first));
}

}  // namespace anvil::nn
