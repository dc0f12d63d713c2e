// `anvil info`: the build's options and devices. `anvil info FILE`: what a model file (from
// `anvil export`), a training checkpoint or another safetensors file holds.
#include <omp.h>

#include <filesystem>
#include <iostream>
#include <map>

#include "anvil/anvil.h"
#include "anvil/io/model_file.h"
#include "anvil/text/tokenizer.h"
#include "tools/commands.h"

namespace anvil::tools {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

int describe_build() {
  std::cout << "anvil 0.1.0\n"
#ifdef ANVIL_WITH_CUDA
            << "cuda backend: built (sm_90)\n"
#else
            << "cuda backend: not built\n"
#endif
            << "cuda devices: " << cuda_device_count() << "\n"
            << "cpu threads (OpenMP): " << omp_get_max_threads() << "\n"
            << "blas: OpenBLAS\n"
            << "dtypes: bool uint8 int32 int64 float16 bfloat16 float32 float64\n";
  return 0;
}

// "33922 values in 6 tensors, float32" or "... float16 (6), int64 (1)".
std::string tensors_summary(const StateDict& d) {
  std::map<std::string, int> per_dtype;
  int64_t values = 0;
  for (const auto& [k, v] : d) {
    ++per_dtype[dtype_name(v.dtype())];
    values += v.numel();
  }
  std::string dtypes;
  for (const auto& [name, n] : per_dtype)
    dtypes += detail::cat(dtypes.empty() ? "" : ", ", name,
                          per_dtype.size() > 1 ? detail::cat(" (", n, ")") : "");
  return detail::cat(values, " values in ", d.size(), " tensors, ", dtypes);
}

// The layer table of a ModelBuilder architecture, or a registered module and its arguments.
std::string architecture_summary(const std::string& text) {
  io::Architecture arch = io::Architecture::parse(text);
  if (arch.is_registered())
    return detail::cat("architecture: module ", arch.json()["module"].get<std::string>(),
                       " with args ", arch.json()["args"].dump(), "\n");
  return nn::ModelBuilder::from_json(arch.json()).summary();
}

int describe_model(const std::string& path, const StateDict& tensors,
                   std::map<std::string, std::string>& meta) {
  io::ModelFile f = io::load_model_file(path);  // verifies the file and that the weights fit
  std::cout << path << ": anvil model file (format version " << meta["version"] << ", "
            << fs::file_size(path) << " bytes)\n"
            << architecture_summary(meta["architecture"])
            << "parameters: " << f.model->num_parameters() << "\n"
            << "weights: " << tensors_summary(tensors) << "\n";
  if (!f.extras.tokenizer.empty()) {
    auto tok = text::parse_tokenizer(f.extras.tokenizer, path);
    std::cout << "tokenizer: " << tok->type() << ", " << tok->vocab_size() << " tokens";
    for (const auto& [name, id] : tok->special_tokens()) std::cout << ", " << name << " = " << id;
    std::cout << "\n";
  }
  return 0;
}

int describe_checkpoint(const std::string& path) {
  io::Checkpoint c = io::load_checkpoint(path);
  std::cout << path << ": anvil checkpoint after epoch " << c.epoch << " (" << c.global_step
            << " optimizer steps)\n";
  if (!c.architecture.empty()) std::cout << architecture_summary(c.architecture);
  std::cout << "model: " << tensors_summary(c.model) << "\n"
            << "optimizer: " << c.optimizer.size() << " tensors\n"
            << "scheduler: "
            << (c.scheduler.empty() ? "none" : detail::cat(c.scheduler.size(), " tensors")) << "\n";
  if (c.history.is_array() && !c.history.empty()) {
    std::cout << "last epoch:";
    for (const auto& [k, v] : c.history.back().items())
      if (k != "epoch") {
        std::cout << "  " << k << " ";
        if (v.is_number())
          std::cout << v.get<double>();
        else
          std::cout << v.dump();
      }
    std::cout << "\n";
  }
  return 0;
}

int describe_safetensors(const std::string& path, const StateDict& tensors,
                         const std::map<std::string, std::string>& meta) {
  std::cout << path << ": safetensors file, " << tensors_summary(tensors) << "\n";
  for (const auto& [k, v] : meta)
    std::cout << "  metadata " << k << ": "
              << (v.size() > 60 ? detail::cat(v.substr(0, 57), "...") : v) << "\n";
  for (const auto& [k, v] : tensors)
    std::cout << "  " << k << "  " << dtype_name(v.dtype()) << "  " << to_string(v.shape()) << "\n";
  return 0;
}

}  // namespace

int info_command(const std::string& file) {
  if (file.empty()) return describe_build();
  ANVIL_CHECK(!fs::is_directory(file), IOError, "anvil info: '", file,
              "' is a directory; expected a model file, a checkpoint or a safetensors file");
  std::map<std::string, std::string> meta;
  StateDict tensors = io::load_safetensors(file, &meta);
  if (meta.count("anvil_checkpoint")) return describe_checkpoint(file);
  auto format = meta.find("format");
  if (meta.count("architecture") ||
      (format != meta.end() && format->second.rfind("anvil-model", 0) == 0))
    return describe_model(file, tensors, meta);
  return describe_safetensors(file, tensors, meta);
}

}  // namespace anvil::tools
