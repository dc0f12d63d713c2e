// Model files for inference: one safetensors file holding the weights (PyTorch state-dict
// names) and, in its metadata, the architecture — everything needed to rebuild the model
// without the training code. The architecture is ModelBuilder JSON or a registered module
// (nn/registry.h) with its arguments:
//
//   io::save_model(builder, *model, "fashion.anvil");
//   io::save_model("resnet18", {{"num_classes", 10}}, *net, "cifar.anvil");
//   auto model = anvil::load_model("cifar.anvil");   // in eval mode, on the CPU
//   auto gpu = io::load_model("cifar.anvil", {.device = Device(kCUDA, 0), .dtype = kFloat16});
//
// File metadata: format "anvil-model", version "1", architecture = Architecture::dump(), and
// for a language model its tokenizer ("tokenizer": the anvil tokenizer document, text/tokenizer.h),
// so the file alone turns text into tokens and back.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "anvil/core/device.h"
#include "anvil/core/dtype.h"
#include "anvil/nn/model_builder.h"

namespace anvil::io {

// What a model is, as data. Its text (dump()) is one JSON document of either form
//   {"input_shape": [1, 28, 28], "layers": [...]}            ModelBuilder JSON
//   {"module": "resnet18", "args": {"num_classes": 10}}      nn::make_module(module, args)
// and is what model files store; a training checkpoint's "architecture" string
// (io::Checkpoint, Trainer::set_architecture) takes the same text, so
// Architecture::parse(ckpt.architecture).build() rebuilds the model of either file.
class Architecture {
 public:
  Architecture(const nn::ModelBuilder& builder);  // NOLINT: implicit, save_model(builder, ...)
  // A registered module; args null means {}. Not checked until build().
  Architecture(const std::string& module, nlohmann::json args);
  // Throws ValueError when `text` is not JSON or is neither form.
  static Architecture parse(const std::string& text);

  bool is_registered() const { return spec_.contains("module"); }
  const nlohmann::json& json() const { return spec_; }
  std::string dump() const { return spec_.dump(); }
  // A fresh model with freshly initialised parameters. Throws ValueError for an unknown
  // module name (listing the registered ones) or a bad ModelBuilder layer.
  std::shared_ptr<nn::Module> build() const;

 private:
  explicit Architecture(nlohmann::json spec) : spec_(std::move(spec)) {}
  nlohmann::json spec_;
};

// What a model file may hold besides the model.
struct ModelFileExtras {
  std::string tokenizer;  // an anvil tokenizer document (Tokenizer::to_json().dump()); "": none
};

// Writes atomically. Throws ValueError when the model's state dict does not fit `arch`
// (ShapeError when a weight's shape differs) or `arch` cannot be built.
void save_model(const Architecture& arch, const nn::Module& model, const std::string& path,
                const ModelFileExtras& extras = {});
// The same for the registered module `name` built with `args`.
void save_model(const std::string& name, const nlohmann::json& args, const nn::Module& model,
                const std::string& path);

// Where a loaded model goes, and in which floating dtype (default: as saved).
struct LoadOptions {
  Device device = kCPU;
  std::optional<DType> dtype = std::nullopt;
};

// Rebuilds the model in eval mode on options.device. Throws IOError naming the file when it is
// not an anvil model file or is damaged, ValueError for an architecture this program cannot
// build (such as a module not registered here), and ShapeError/ValueError when the weights do
// not fit.
std::shared_ptr<nn::Module> load_model(const std::string& path, const LoadOptions& options = {});

// The model and what else the file holds (text::parse_tokenizer reads extras.tokenizer).
struct ModelFile {
  std::shared_ptr<nn::Module> model;
  ModelFileExtras extras;
};
ModelFile load_model_file(const std::string& path, const LoadOptions& options = {});

}  // namespace anvil::io

namespace anvil {
using io::load_model;
using io::save_model;
}  // namespace anvil
