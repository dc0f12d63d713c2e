#include "anvil/io/model_file.h"

#include "anvil/io/safetensors.h"
#include "anvil/nn/registry.h"

namespace anvil::io {
namespace {
constexpr const char* kFormat = "anvil-model";
constexpr const char* kVersion = "1";

// The one floating dtype of the saved weights (the model is built in it, so loading does not
// round through float32); nullopt when there is none or they differ.
std::optional<DType> saved_dtype(const StateDict& weights) {
  std::optional<DType> found;
  for (const auto& [name, t] : weights) {
    if (!t.is_floating_point()) continue;
    if (found && *found != t.dtype()) return std::nullopt;
    found = t.dtype();
  }
  return found;
}
}  // namespace

Architecture::Architecture(const nn::ModelBuilder& builder) : spec_(builder.to_json()) {}

Architecture::Architecture(const std::string& module, nlohmann::json args)
    : spec_({{"module", module}, {"args", args.is_null() ? nlohmann::json::object() : args}}) {}

Architecture Architecture::parse(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(
        detail::cat("Architecture::parse: expected a JSON document, got an error: ", e.what()));
  }
  ANVIL_CHECK(j.is_object() && (j.contains("module") || j.contains("layers")), ValueError,
              "Architecture::parse: expected {\"module\": name, \"args\": {...}} or ModelBuilder "
              "JSON {\"input_shape\": [...], \"layers\": [...]}, got ",
              j.dump());
  if (j.contains("module")) {
    ANVIL_CHECK(j["module"].is_string(), ValueError,
                "Architecture::parse: expected \"module\" to be a string, got ",
                j["module"].dump());
    if (!j.contains("args")) j["args"] = nlohmann::json::object();
    ANVIL_CHECK(j["args"].is_object(), ValueError,
                "Architecture::parse: expected \"args\" to be a JSON object, got ",
                j["args"].dump());
  }
  return Architecture(std::move(j));
}

std::shared_ptr<nn::Module> Architecture::build() const {
  if (is_registered()) return nn::make_module(spec_["module"].get<std::string>(), spec_["args"]);
  return nn::ModelBuilder::from_json(spec_).build();
}

void save_model(const Architecture& arch, const nn::Module& model, const std::string& path,
                const ModelFileExtras& extras) {
  StateDict weights = model.state_dict();
  // Refuse a model that is not the architecture's: the file would not load back.
  arch.build()->load_state_dict(weights);
  std::map<std::string, std::string> meta{
      {"format", kFormat}, {"version", kVersion}, {"architecture", arch.dump()}};
  if (!extras.tokenizer.empty()) meta["tokenizer"] = extras.tokenizer;
  save_safetensors(weights, path, meta);
}

void save_model(const std::string& name, const nlohmann::json& args, const nn::Module& model,
                const std::string& path) {
  save_model(Architecture(name, args), model, path);
}

std::shared_ptr<nn::Module> load_model(const std::string& path, const LoadOptions& options) {
  return load_model_file(path, options).model;
}

ModelFile load_model_file(const std::string& path, const LoadOptions& options) {
  std::map<std::string, std::string> meta;
  StateDict weights = load_safetensors(path, &meta);
  ANVIL_CHECK(meta["format"] == kFormat, IOError, "load_model: '", path,
              "' is not an anvil model file (format '", meta["format"], "', expected '", kFormat,
              "')");
  ANVIL_CHECK(meta["version"] == kVersion, IOError, "load_model: '", path, "' has format version ",
              meta["version"], "; this build reads version ", kVersion);
  std::optional<Architecture> arch;
  try {
    arch = Architecture::parse(meta["architecture"]);
  } catch (const ValueError& e) {
    throw IOError(detail::cat("load_model: '", path, "' has a damaged architecture: ", e.what()));
  }
  auto model = arch->build();
  // Convert before loading, so float64 weights are not rounded through float32 on the way.
  if (auto dtype = options.dtype ? options.dtype : saved_dtype(weights)) model->to(*dtype);
  model->load_state_dict(weights);
  model->eval();
  model->to(options.device);
  return {model, {.tokenizer = meta["tokenizer"]}};
}

}  // namespace anvil::io
