// Model files for inference: one safetensors file holding the weights (PyTorch state-dict
// names) and, in its metadata, the architecture as ModelBuilder JSON — everything needed to
// rebuild the model without the training code.
//
//   io::save_model(arch, *model, "fashion.anvil");
//   auto model = io::load_model("fashion.anvil");   // in eval mode, on the CPU
//   auto gpu = io::load_model("fashion.anvil", {.device = Device(kCUDA, 0), .dtype = kFloat16});
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "anvil/core/device.h"
#include "anvil/core/dtype.h"

#include "anvil/nn/model_builder.h"

namespace anvil::io {

// Writes atomically. Throws ValueError when the model's state dict does not fit `arch`.
void save_model(const nn::ModelBuilder& arch, const nn::Module& model, const std::string& path);

// Where a loaded model goes, and in which floating dtype (default: as saved).
struct LoadOptions {
  Device device = kCPU;
  std::optional<DType> dtype;
};

// Rebuilds the model in eval mode on options.device. Throws IOError naming the file when it is
// not an anvil model file or is damaged, and ShapeError/ValueError when the weights do not fit.
std::shared_ptr<nn::Module> load_model(const std::string& path, const LoadOptions& options = {});

}  // namespace anvil::io
