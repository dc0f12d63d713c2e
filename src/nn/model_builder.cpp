#include "anvil/nn/model_builder.h"

#include <iomanip>
#include <sstream>

#include "anvil/autograd/grad_mode.h"
#include "anvil/core/file.h"
#include "anvil/nn/activation.h"
#include "anvil/nn/conv.h"
#include "anvil/nn/dropout.h"
#include "anvil/nn/embedding.h"
#include "anvil/nn/layer_norm.h"
#include "anvil/nn/linear.h"
#include "anvil/nn/normalization.h"
#include "anvil/nn/pooling.h"
#include "anvil/nn/positional_encoding.h"
#include "anvil/nn/rnn.h"
#include "anvil/nn/sequence_pool.h"
#include "anvil/nn/shape.h"
#include "anvil/nn/transformer.h"
#include "anvil/ops/creation.h"

namespace anvil::nn {
namespace {
using json = nlohmann::json;

const char* kTypes =
    "dense, conv2d, maxpool2d, avgpool2d, adaptive_avgpool2d, global_avgpool2d, batchnorm, "
    "layer_norm, rms_norm, dropout, flatten, reshape, embedding, relu, leaky_relu, elu, sigmoid, tanh, silu, gelu, "
    "softmax, log_softmax, positional_encoding, transformer_encoder, mean_pool, select_token, "
    "first_token, rnn, lstm, gru";

// Reads field `key` of a layer description, with a default; a wrong JSON type is a ValueError
// naming the layer and the field.
template <class T>
T field(const json& spec, const char* key, std::optional<T> fallback = std::nullopt) {
  std::string type = spec.value("type", std::string("?"));
  if (!spec.contains(key)) {
    if (fallback) return *fallback;
    throw ValueError("ModelBuilder: layer '" + type + "' needs the field '" + key + "'");
  }
  try {
    return spec.at(key).get<T>();
  } catch (const json::exception&) {
    throw ValueError("ModelBuilder: layer '" + type + "': field '" + key + "' has the wrong type (" +
                     spec.at(key).dump() + ")");
  }
}

// An int or a [h, w] pair.
Size2 size2(const json& spec, const char* key, std::optional<Size2> fallback = std::nullopt) {
  if (!spec.contains(key) || spec.at(key).is_null()) {
    if (fallback) return *fallback;
    throw ValueError("ModelBuilder: layer '" + spec.value("type", std::string("?")) +
                     "' needs the field '" + key + "'");
  }
  const json& v = spec.at(key);
  if (v.is_number_integer()) return Size2(v.get<int64_t>());
  if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer())
    return Size2(v[0].get<int64_t>(), v[1].get<int64_t>());
  throw ValueError("ModelBuilder: layer '" + spec.value("type", std::string("?")) + "': field '" +
                   key + "' must be an integer or a pair of integers, got " + v.dump());
}

json pair_json(Size2 s) { return s.square() ? json(s.v[0]) : json({s.v[0], s.v[1]}); }

int64_t count_params(const Module& m) { return m.num_parameters(); }

}  // namespace

ModulePtr make_layer(const json& spec, const Shape& in) {
  ANVIL_CHECK(spec.is_object() && spec.contains("type") && spec["type"].is_string(), ValueError,
              "ModelBuilder: a layer must be an object with a string 'type', got ", spec.dump());
  std::string t = spec["type"].get<std::string>();
  auto need_rank = [&](int64_t lo, int64_t hi) {
    ANVIL_CHECK(int64_t(in.size()) >= lo && int64_t(in.size()) <= hi, ShapeError, "ModelBuilder: ",
                t, " expects an input with ", lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi),
                " dims (batch included), got shape ", to_string(in));
  };
  if (t == "dense" || t == "linear") {
    need_rank(2, 8);
    return std::make_shared<Linear>(in.back(), field<int64_t>(spec, "units"),
                                    field<bool>(spec, "bias", true));
  }
  if (t == "conv2d") {
    need_rank(4, 4);
    return std::make_shared<Conv2d>(in[1], field<int64_t>(spec, "out_channels"),
                                    size2(spec, "kernel_size"), size2(spec, "stride", 1),
                                    size2(spec, "padding", 0), size2(spec, "dilation", 1),
                                    field<int64_t>(spec, "groups", 1), field<bool>(spec, "bias", true));
  }
  if (t == "maxpool2d" || t == "avgpool2d") {
    need_rank(4, 4);
    std::optional<Size2> stride;
    if (spec.contains("stride") && !spec["stride"].is_null()) stride = size2(spec, "stride");
    if (t == "maxpool2d")
      return std::make_shared<MaxPool2d>(size2(spec, "kernel_size"), stride, size2(spec, "padding", 0));
    return std::make_shared<AvgPool2d>(size2(spec, "kernel_size"), stride, size2(spec, "padding", 0));
  }
  if (t == "adaptive_avgpool2d") {
    need_rank(4, 4);
    return std::make_shared<AdaptiveAvgPool2d>(size2(spec, "output_size"));
  }
  if (t == "global_avgpool2d") {
    need_rank(4, 4);
    return std::make_shared<GlobalAvgPool2d>();
  }
  if (t == "batchnorm") {
    need_rank(2, 4);
    double eps = field<double>(spec, "eps", 1e-5), momentum = field<double>(spec, "momentum", 0.1);
    if (in.size() == 4) return std::make_shared<BatchNorm2d>(in[1], eps, momentum);
    return std::make_shared<BatchNorm1d>(in[1], eps, momentum);
  }
  if (t == "layer_norm") {  // over the last dim
    need_rank(2, 8);
    return std::make_shared<LayerNorm>(in.back(), field<double>(spec, "eps", 1e-5),
                                       field<bool>(spec, "elementwise_affine", true),
                                       field<bool>(spec, "bias", true));
  }
  if (t == "rms_norm") {
    need_rank(2, 8);
    std::optional<double> eps;  // null or absent: the input's machine epsilon
    if (spec.contains("eps") && !spec["eps"].is_null()) eps = field<double>(spec, "eps");
    return std::make_shared<RMSNorm>(in.back(), eps,
                                     field<bool>(spec, "elementwise_affine", true));
  }
  if (t == "dropout") return std::make_shared<Dropout>(field<double>(spec, "p", 0.5));
  if (t == "flatten") return std::make_shared<Flatten>();
  if (t == "reshape") return std::make_shared<Reshape>(field<Shape>(spec, "shape"));
  if (t == "embedding")
    return std::make_shared<Embedding>(field<int64_t>(spec, "num_embeddings"),
                                       field<int64_t>(spec, "embedding_dim"));
  if (t == "positional_encoding") {  // [N, T, D], batch first as every builder layer
    need_rank(3, 3);
    const std::string kind = field<std::string>(spec, "kind", std::string("sinusoidal"));
    const int64_t max_len = field<int64_t>(spec, "max_len", int64_t(5000));
    if (kind == "learned") {
      ANVIL_CHECK(!spec.contains("dropout"), ValueError,
                  "ModelBuilder: positional_encoding 'learned' takes no 'dropout' (add a dropout layer)");
      return std::make_shared<LearnedPositionalEmbedding>(max_len, in.back(), true);
    }
    ANVIL_CHECK(kind == "sinusoidal", ValueError, "ModelBuilder: positional_encoding: field 'kind' ",
                "must be \"sinusoidal\" or \"learned\", got \"", kind, "\"");
    return std::make_shared<SinusoidalPositionalEncoding>(
        in.back(), max_len, field<double>(spec, "dropout", 0.0), true);
  }
  if (t == "transformer_encoder") {  // [N, T, d_model] -> the same
    need_rank(3, 3);
    const int64_t d_model = field<int64_t>(spec, "d_model", in.back());
    ANVIL_CHECK(d_model == in.back(), ShapeError, "ModelBuilder: transformer_encoder: d_model=",
                d_model, " differs from the incoming features ", in.back());
    const TransformerLayerOptions o{
        .d_model = d_model,
        .nhead = field<int64_t>(spec, "nhead"),
        .dim_feedforward = field<int64_t>(spec, "dim_feedforward", int64_t(2048)),
        .dropout = field<double>(spec, "dropout", 0.1),
        .activation = field<std::string>(spec, "activation", std::string("relu")),
        .layer_norm_eps = field<double>(spec, "layer_norm_eps", 1e-5),
        .batch_first = true,
        .norm_first = field<bool>(spec, "norm_first", false),
        .bias = field<bool>(spec, "bias", true)};
    ModulePtr norm;
    if (field<bool>(spec, "norm", false))
      norm = std::make_shared<LayerNorm>(d_model, o.layer_norm_eps, true, o.bias);
    const int64_t num_layers = field<int64_t>(spec, "num_layers");
    return std::make_shared<TransformerEncoder>(
        [&] { return std::make_shared<TransformerEncoderLayer>(o); }, num_layers, norm);
  }
  if (t == "rnn" || t == "lstm" || t == "gru") {  // [N, T, F] -> [N, T, D * H] or [N, D * H]
    need_rank(3, 3);
    const RNNOptions o{.num_layers = field<int64_t>(spec, "num_layers", int64_t(1)),
                       .nonlinearity = field<std::string>(spec, "nonlinearity", std::string("tanh")),
                       .bias = field<bool>(spec, "bias", true),
                       .batch_first = true,
                       .dropout = field<double>(spec, "dropout", 0.0),
                       .bidirectional = field<bool>(spec, "bidirectional", false),
                       .proj_size = field<int64_t>(spec, "proj_size", int64_t(0))};
    const int64_t hidden = field<int64_t>(spec, "hidden_size");
    std::shared_ptr<RNNBase> r;
    if (t == "lstm") r = std::make_shared<LSTM>(in.back(), hidden, o);
    else if (t == "gru") r = std::make_shared<GRU>(in.back(), hidden, o);
    else r = std::make_shared<RNN>(in.back(), hidden, o);
    const std::string ret = field<std::string>(spec, "return", std::string("sequence"));
    ANVIL_CHECK(ret == "sequence" || ret == "last_state", ValueError, "ModelBuilder: ", t,
                ": field 'return' must be \"sequence\" or \"last_state\", got \"", ret, "\"");
    if (ret == "last_state") r->one_tensor = RNNBase::OneTensor::LastState;
    return r;
  }
  if (t == "mean_pool") {
    need_rank(3, 8);
    return std::make_shared<MeanPool>(1);
  }
  if (t == "select_token" || t == "first_token") {
    need_rank(3, 8);
    return std::make_shared<SelectToken>(t == "first_token" ? 0 : field<int64_t>(spec, "index", int64_t(0)));
  }
  if (t == "relu") return std::make_shared<ReLU>();
  if (t == "leaky_relu") return std::make_shared<LeakyReLU>(field<double>(spec, "negative_slope", 0.01));
  if (t == "elu") return std::make_shared<ELU>(field<double>(spec, "alpha", 1.0));
  if (t == "sigmoid") return std::make_shared<Sigmoid>();
  if (t == "tanh") return std::make_shared<Tanh>();
  if (t == "silu" || t == "swish") return std::make_shared<SiLU>();
  if (t == "gelu") return std::make_shared<GELU>(field<std::string>(spec, "approximate", std::string("none")));
  if (t == "softmax") return std::make_shared<Softmax>(field<int64_t>(spec, "dim", -1));
  if (t == "log_softmax") return std::make_shared<LogSoftmax>(field<int64_t>(spec, "dim", -1));
  throw ValueError("ModelBuilder: unknown layer type '" + t + "' (expected one of " + kTypes + ")");
}

ModelBuilder::ModelBuilder(Shape input_shape) : input_shape_(std::move(input_shape)) {
  ANVIL_CHECK(!input_shape_.empty(), ValueError,
              "ModelBuilder: expected an input shape with a batch dimension, got []");
  for (int64_t d : input_shape_)
    ANVIL_CHECK(d > 0, ValueError, "ModelBuilder: input shape ", to_string(input_shape_),
                " has a non-positive size");
}

ModelBuilder& ModelBuilder::add(const json& spec) {
  const Shape& in = layers_.empty() ? input_shape_ : layers_.back().out_shape;
  const size_t index = layers_.size();
  const std::string where = detail::cat("ModelBuilder: layer ", index, " (",
                                        spec.is_object() ? spec.value("type", std::string("?")) : "?", ")");
  auto strip = [](const char* msg) {  // make_layer's messages carry the same prefix
    std::string m = msg;
    return m.rfind("ModelBuilder: ", 0) == 0 ? m.substr(14) : m;
  };
  ModulePtr layer;
  try {
    layer = make_layer(spec, in);
  } catch (const ValueError& e) {  // a bad description
    throw ValueError(where + ": " + strip(e.what()));
  } catch (const Error& e) {  // a layer that cannot follow the incoming shape
    throw ShapeError(where + " cannot take input of shape " + to_string(in) + ": " + strip(e.what()));
  }
  Shape out;
  try {
    layer->eval();  // probe in inference mode: batch norm needs no batch statistics
    NoGradGuard no_grad;
    // Embedding takes integer indices; everything else floats.
    DType dt = spec.value("type", std::string()) == "embedding" ? kInt64 : kFloat32;
    out = layer->forward(zeros(in, dt)).shape();
  } catch (const Error& e) {
    throw ShapeError(where + " cannot take input of shape " + to_string(in) + ": " + e.what());
  }
  layers_.push_back({spec, in, out, count_params(*layer)});
  return *this;
}

ModelBuilder& ModelBuilder::dense(int64_t units, bool bias) {
  return add({{"type", "dense"}, {"units", units}, {"bias", bias}});
}
ModelBuilder& ModelBuilder::conv2d(int64_t out_channels, Size2 kernel_size, Size2 stride,
                                   Size2 padding, Size2 dilation, int64_t groups, bool bias) {
  return add({{"type", "conv2d"}, {"out_channels", out_channels}, {"kernel_size", pair_json(kernel_size)},
              {"stride", pair_json(stride)}, {"padding", pair_json(padding)},
              {"dilation", pair_json(dilation)}, {"groups", groups}, {"bias", bias}});
}
ModelBuilder& ModelBuilder::maxpool2d(Size2 kernel_size, std::optional<Size2> stride, Size2 padding) {
  return add({{"type", "maxpool2d"}, {"kernel_size", pair_json(kernel_size)},
              {"stride", stride ? pair_json(*stride) : json(nullptr)}, {"padding", pair_json(padding)}});
}
ModelBuilder& ModelBuilder::avgpool2d(Size2 kernel_size, std::optional<Size2> stride, Size2 padding) {
  return add({{"type", "avgpool2d"}, {"kernel_size", pair_json(kernel_size)},
              {"stride", stride ? pair_json(*stride) : json(nullptr)}, {"padding", pair_json(padding)}});
}
ModelBuilder& ModelBuilder::adaptive_avgpool2d(Size2 output_size) {
  return add({{"type", "adaptive_avgpool2d"}, {"output_size", pair_json(output_size)}});
}
ModelBuilder& ModelBuilder::global_avgpool2d() { return add({{"type", "global_avgpool2d"}}); }
ModelBuilder& ModelBuilder::batchnorm(double eps, double momentum) {
  return add({{"type", "batchnorm"}, {"eps", eps}, {"momentum", momentum}});
}
ModelBuilder& ModelBuilder::layer_norm(double eps, bool elementwise_affine, bool bias) {
  return add({{"type", "layer_norm"}, {"eps", eps}, {"elementwise_affine", elementwise_affine},
              {"bias", bias}});
}
ModelBuilder& ModelBuilder::rms_norm(std::optional<double> eps, bool elementwise_affine) {
  return add({{"type", "rms_norm"}, {"eps", eps ? json(*eps) : json(nullptr)},
              {"elementwise_affine", elementwise_affine}});
}
ModelBuilder& ModelBuilder::dropout(double p) { return add({{"type", "dropout"}, {"p", p}}); }
ModelBuilder& ModelBuilder::flatten() { return add({{"type", "flatten"}}); }
ModelBuilder& ModelBuilder::reshape(const Shape& shape) {
  return add({{"type", "reshape"}, {"shape", shape}});
}
ModelBuilder& ModelBuilder::embedding(int64_t num_embeddings, int64_t embedding_dim) {
  return add({{"type", "embedding"}, {"num_embeddings", num_embeddings}, {"embedding_dim", embedding_dim}});
}
ModelBuilder& ModelBuilder::positional_encoding(const std::string& kind, int64_t max_len,
                                                double dropout) {
  json spec{{"type", "positional_encoding"}, {"kind", kind}, {"max_len", max_len}};
  if (kind != "learned") spec["dropout"] = dropout;
  return add(spec);
}
ModelBuilder& ModelBuilder::transformer_encoder(int64_t nhead, int64_t num_layers,
                                                int64_t dim_feedforward, double dropout,
                                                const std::string& activation, bool norm_first,
                                                double layer_norm_eps, bool norm) {
  return add({{"type", "transformer_encoder"}, {"nhead", nhead}, {"num_layers", num_layers},
              {"dim_feedforward", dim_feedforward}, {"dropout", dropout},
              {"activation", activation}, {"norm_first", norm_first},
              {"layer_norm_eps", layer_norm_eps}, {"norm", norm}});
}
ModelBuilder& ModelBuilder::recurrent(const std::string& type, int64_t hidden_size,
                                      int64_t num_layers, bool bidirectional,
                                      const std::string& returns, double dropout) {
  return add({{"type", type},
              {"hidden_size", hidden_size},
              {"num_layers", num_layers},
              {"bidirectional", bidirectional},
              {"return", returns},
              {"dropout", dropout}});
}
ModelBuilder& ModelBuilder::mean_pool() { return add({{"type", "mean_pool"}}); }
ModelBuilder& ModelBuilder::select_token(int64_t index) {
  return add({{"type", "select_token"}, {"index", index}});
}
ModelBuilder& ModelBuilder::relu() { return add({{"type", "relu"}}); }
ModelBuilder& ModelBuilder::leaky_relu(double slope) {
  return add({{"type", "leaky_relu"}, {"negative_slope", slope}});
}
ModelBuilder& ModelBuilder::elu(double alpha) { return add({{"type", "elu"}, {"alpha", alpha}}); }
ModelBuilder& ModelBuilder::sigmoid() { return add({{"type", "sigmoid"}}); }
ModelBuilder& ModelBuilder::tanh() { return add({{"type", "tanh"}}); }
ModelBuilder& ModelBuilder::silu() { return add({{"type", "silu"}}); }
ModelBuilder& ModelBuilder::gelu(const std::string& approximate) {
  return add({{"type", "gelu"}, {"approximate", approximate}});
}
ModelBuilder& ModelBuilder::softmax(int64_t dim) { return add({{"type", "softmax"}, {"dim", dim}}); }
ModelBuilder& ModelBuilder::log_softmax(int64_t dim) {
  return add({{"type", "log_softmax"}, {"dim", dim}});
}

std::shared_ptr<Sequential> ModelBuilder::build() const {
  auto model = std::make_shared<Sequential>();
  for (const Layer& l : layers_) model->push_back(make_layer(l.spec, l.in_shape));
  return model;
}

const Shape& ModelBuilder::output_shape() const {
  return layers_.empty() ? input_shape_ : layers_.back().out_shape;
}

int64_t ModelBuilder::num_parameters() const {
  int64_t n = 0;
  for (const Layer& l : layers_) n += l.params;
  return n;
}

std::string ModelBuilder::summary() const {
  std::vector<std::array<std::string, 4>> rows;
  rows.push_back({"#", "layer", "output shape", "params"});
  rows.push_back({"", "input", to_string(input_shape_), ""});
  for (size_t i = 0; i < layers_.size(); ++i)
    rows.push_back({std::to_string(i), layers_[i].spec.value("type", std::string("?")),
                    to_string(layers_[i].out_shape), std::to_string(layers_[i].params)});
  std::array<size_t, 4> w{};
  for (const auto& r : rows)
    for (size_t c = 0; c < 4; ++c) w[c] = std::max(w[c], r[c].size());
  std::ostringstream os;
  auto line = [&] {
    for (size_t c = 0; c < 4; ++c) os << std::string(w[c] + (c ? 3 : 0), '-');
    os << '\n';
  };
  for (size_t r = 0; r < rows.size(); ++r) {
    os << std::left << std::setw(int(w[0])) << rows[r][0] << "   " << std::setw(int(w[1]))
       << rows[r][1] << "   " << std::setw(int(w[2])) << rows[r][2] << "   " << std::right
       << std::setw(int(w[3])) << rows[r][3] << '\n';
    if (r == 0) line();
  }
  line();
  os << "total parameters: " << num_parameters() << '\n';
  return os.str();
}

json ModelBuilder::to_json() const {
  json layers = json::array();
  for (const Layer& l : layers_) layers.push_back(l.spec);
  return {{"input_shape", Shape(input_shape_.begin() + 1, input_shape_.end())}, {"layers", layers}};
}

ModelBuilder ModelBuilder::from_json(const json& j, int64_t batch_size) {
  ANVIL_CHECK(j.is_object() && j.contains("input_shape") && j.contains("layers") &&
                  j["input_shape"].is_array() && j["layers"].is_array(),
              ValueError,
              "ModelBuilder: expected {\"input_shape\": [...], \"layers\": [...]}, got ",
              j.dump().substr(0, 200));
  Shape shape{batch_size};
  for (const auto& d : j["input_shape"]) {
    ANVIL_CHECK(d.is_number_integer(), ValueError,
                "ModelBuilder: input_shape must hold integers, got ", j["input_shape"].dump());
    shape.push_back(d.get<int64_t>());
  }
  ModelBuilder b(shape);
  for (const auto& layer : j["layers"]) b.add(layer);
  return b;
}

void ModelBuilder::save(const std::string& path) const {
  write_file_atomic(path, to_json().dump(2) + "\n");
}

ModelBuilder ModelBuilder::load(const std::string& path, int64_t batch_size) {
  std::string text = read_file(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw ValueError("ModelBuilder: '" + path + "' is not valid JSON: " + e.what());
  }
  try {
    return from_json(j, batch_size);
  } catch (const Error& e) {
    throw ValueError("ModelBuilder: '" + path + "': " + e.what());
  }
}

}  // namespace anvil::nn
