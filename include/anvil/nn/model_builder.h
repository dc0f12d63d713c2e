// ModelBuilder: a fluent way to stack layers that infers every shape as it goes, in the
// spirit of go-metal's builder and Keras' Sequential:
//
//   auto model = nn::ModelBuilder({64, 1, 28, 28})
//                    .conv2d(32, 3).relu().maxpool2d(2)
//                    .flatten().dense(128).relu().dense(10)
//                    .build();                      // a shared_ptr<nn::Sequential>
//
// Each call checks at once that the layer can take the shape before it (by running it on a
// zero tensor of that shape), so an impossible stack fails at the call that breaks it with
// an Error naming the layer, its position and the incoming shape. The architecture is plain
// data: to_json()/from_json() (and save/load) describe a model in a file such as
//   {"input_shape": [1, 28, 28], "layers": [{"type": "flatten"}, {"type": "dense", "units": 10}]}
// where input_shape leaves out the batch dimension.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "anvil/nn/sequential.h"
#include "anvil/nn/size2.h"

namespace anvil::nn {

class ModelBuilder {
 public:
  // input_shape includes the batch dimension: {batch, features} or {batch, C, H, W}.
  // Throws ValueError for an empty shape or a non-positive size.
  explicit ModelBuilder(Shape input_shape);

  // ---- layers (each returns *this) ----
  ModelBuilder& dense(int64_t units, bool bias = true);  // Linear over the last dim
  ModelBuilder& linear(int64_t units, bool bias = true) { return dense(units, bias); }
  ModelBuilder& conv2d(int64_t out_channels, Size2 kernel_size, Size2 stride = 1,
                       Size2 padding = 0, Size2 dilation = 1, int64_t groups = 1,
                       bool bias = true);
  ModelBuilder& maxpool2d(Size2 kernel_size, std::optional<Size2> stride = {}, Size2 padding = 0);
  ModelBuilder& avgpool2d(Size2 kernel_size, std::optional<Size2> stride = {}, Size2 padding = 0);
  ModelBuilder& adaptive_avgpool2d(Size2 output_size);
  ModelBuilder& global_avgpool2d();  // [N, C, H, W] -> [N, C]
  // BatchNorm1d for [N, C] or [N, C, L] inputs, BatchNorm2d for [N, C, H, W].
  ModelBuilder& batchnorm(double eps = 1e-5, double momentum = 0.1);
  // LayerNorm / RMSNorm over the last dim (as torch.nn.LayerNorm(in.back(), ...)).
  ModelBuilder& layer_norm(double eps = 1e-5, bool elementwise_affine = true, bool bias = true);
  ModelBuilder& rms_norm(std::optional<double> eps = std::nullopt, bool elementwise_affine = true);
  ModelBuilder& dropout(double p = 0.5);
  ModelBuilder& flatten();                    // [N, ...] -> [N, prod(...)]
  ModelBuilder& reshape(const Shape& shape);  // per sample, without the batch dim; -1 allowed
  ModelBuilder& embedding(int64_t num_embeddings, int64_t embedding_dim);
  // ---- sequences [N, T, D] (batch first), e.g. a classifier over token ids [N, T]:
  //   ModelBuilder({32, 16}).embedding(100, 64).positional_encoding()
  //       .transformer_encoder(4, 2, 128, 0.1).mean_pool().dense(2)
  // Adds position information: "sinusoidal" (SinusoidalPositionalEncoding with `dropout`) or
  // "learned" (LearnedPositionalEmbedding, no dropout: add a dropout layer), over max_len
  // positions and the incoming features.
  ModelBuilder& positional_encoding(const std::string& kind = "sinusoidal", int64_t max_len = 5000,
                                    double dropout = 0.0);
  // A TransformerEncoder of num_layers TransformerEncoderLayers (batch_first, d_model = the
  // incoming features; JSON may name d_model, which must then match), with a final LayerNorm
  // when `norm` (usual with norm_first).
  ModelBuilder& transformer_encoder(int64_t nhead, int64_t num_layers,
                                    int64_t dim_feedforward = 2048, double dropout = 0.1,
                                    const std::string& activation = "relu", bool norm_first = false,
                                    double layer_norm_eps = 1e-5, bool norm = false);
  // A recurrent layer, "rnn", "lstm" or "gru" (batch_first; JSON also takes nonlinearity,
  // bias and proj_size): [N, T, F] -> [N, T, D * H] with returns "sequence", or the last
  // layer's final states [N, D * H] with "last_state" (embedding -> lstm -> dense classifies
  // sequences).
  ModelBuilder& recurrent(const std::string& type, int64_t hidden_size, int64_t num_layers = 1,
                          bool bidirectional = false, const std::string& returns = "sequence",
                          double dropout = 0.0);
  ModelBuilder& mean_pool();                      // [N, T, D] -> [N, D], the mean over T
  ModelBuilder& select_token(int64_t index = 0);  // [N, T, D] -> [N, D], x[:, index]
  ModelBuilder& relu();
  ModelBuilder& leaky_relu(double negative_slope = 0.01);
  ModelBuilder& elu(double alpha = 1.0);
  ModelBuilder& sigmoid();
  ModelBuilder& tanh();
  ModelBuilder& silu();
  ModelBuilder& swish() { return silu(); }
  ModelBuilder& gelu(const std::string& approximate = "none");
  ModelBuilder& softmax(int64_t dim = -1);
  ModelBuilder& log_softmax(int64_t dim = -1);
  // Any layer by its JSON description ({"type": "conv2d", "out_channels": 8, ...}).
  ModelBuilder& add(const nlohmann::json& layer);

  // A new model with freshly initialised parameters (PyTorch's default init).
  std::shared_ptr<Sequential> build() const;

  const Shape& input_shape() const { return input_shape_; }
  // The output shape (with the batch dimension) after the last layer.
  const Shape& output_shape() const;
  size_t num_layers() const { return layers_.size(); }
  int64_t num_parameters() const;
  // A table of the layers: index, type, output shape, parameter count, and the totals.
  std::string summary() const;

  // ---- the architecture as data ----
  nlohmann::json to_json() const;
  // Replays the layers, checking each; a batch size of 1 unless given. Throws ValueError
  // naming the offending entry for malformed descriptions.
  static ModelBuilder from_json(const nlohmann::json& j, int64_t batch_size = 1);
  // Writes / reads the JSON file (written to a temporary name and renamed). IOError names the
  // file; bad JSON gives a ValueError with the parser's position.
  void save(const std::string& path) const;
  static ModelBuilder load(const std::string& path, int64_t batch_size = 1);

 private:
  struct Layer {
    nlohmann::json spec;
    Shape in_shape, out_shape;
    int64_t params = 0;
  };
  Shape input_shape_;
  std::vector<Layer> layers_;
};

// The module a JSON layer description stands for, given the shape it will receive (which
// supplies in_features, in_channels, ...). Throws ValueError for an unknown type or a bad field.
ModulePtr make_layer(const nlohmann::json& spec, const Shape& in_shape);

}  // namespace anvil::nn
