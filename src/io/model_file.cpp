#include "anvil/io/model_file.h"

#include <nlohmann/json.hpp>

#include "anvil/io/safetensors.h"

namespace anvil::io {
namespace {
constexpr const char* kFormat = "anvil-model";
constexpr const char* kVersion = "1";
}  // namespace

void save_model(const nn::ModelBuilder& arch, const nn::Module& model, const std::string& path) {
  StateDict weights = model.state_dict();
  // Refuse a model that is not the architecture's: the file would not load back.
  arch.build()->load_state_dict(weights);
  save_safetensors(weights, path,
                   {{"format", kFormat}, {"version", kVersion}, {"architecture", arch.to_json().dump()}});
}

std::shared_ptr<nn::Module> load_model(const std::string& path, const LoadOptions& options) {
  std::map<std::string, std::string> meta;
  StateDict weights = load_safetensors(path, &meta);
  ANVIL_CHECK(meta["format"] == kFormat, IOError, "load_model: '", path,
              "' is not an anvil model file (format '", meta["format"], "', expected '", kFormat, "')");
  ANVIL_CHECK(meta["version"] == kVersion, IOError, "load_model: '", path, "' has format version ",
              meta["version"], "; this build reads version ", kVersion);
  nlohmann::json arch;
  try {
    arch = nlohmann::json::parse(meta["architecture"]);
  } catch (const nlohmann::json::exception& e) {
    throw IOError("load_model: '" + path + "' has a damaged architecture: " + e.what());
  }
  auto model = nn::ModelBuilder::from_json(arch).build();
  model->load_state_dict(weights);
  model->eval();
  if (options.dtype) model->to(*options.dtype);
  model->to(options.device);
  return model;
}

}  // namespace anvil::io
