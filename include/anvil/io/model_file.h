// Model files for inference: one safetensors file holding the weights (PyTorch state-dict
// names) and, in its metadata, the architecture as ModelBuilder JSON — everything needed to
// rebuild the model without the training code.
//
//   io::save_model(arch, *model, "fashion.anvil");
//   auto model = io::load_model("fashion.anvil");   // a Sequential in eval mode
#pragma once
#include <memory>
#include <string>

#include "anvil/nn/model_builder.h"

namespace anvil::io {

// Writes atomically. Throws ValueError when the model's state dict does not fit `arch`.
void save_model(const nn::ModelBuilder& arch, const nn::Module& model, const std::string& path);

// Rebuilds the model on the CPU in eval mode. Throws IOError naming the file when it is not an
// anvil model file or is damaged, and ShapeError/ValueError when the weights do not fit.
std::shared_ptr<nn::Sequential> load_model(const std::string& path);

}  // namespace anvil::io
