// Pieces the language-model commands (lm_train_command.cpp, generate_command.cpp,
// lm_eval_command.cpp) share: where a run's text is, and its trained model.
#pragma once
#include <memory>
#include <string>

#include "anvil/nn/module.h"
#include "tools/run_spec.h"

namespace anvil::tools {

inline constexpr const char* kTextPrefix = "text:";

// PATH of --data text:PATH. Throws ValueError naming `command` for another source.
std::string text_path(const DataSpec& data, const std::string& command);

// The model of a run directory (model.json) with its final weights, or an interrupted run's
// last checkpoint. Throws IOError naming what is missing.
std::shared_ptr<nn::Module> model_of_run(const std::string& dir, const std::string& command);

}  // namespace anvil::tools
