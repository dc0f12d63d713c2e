#include "tools/lm_run.h"

#include <filesystem>

#include "anvil/core/file.h"
#include "anvil/io/checkpoint.h"
#include "anvil/io/model_file.h"
#include "anvil/io/safetensors.h"

namespace anvil::tools {
namespace fs = std::filesystem;

std::string text_path(const DataSpec& d, const std::string& command) {
  ANVIL_CHECK(d.source.rfind(kTextPrefix, 0) == 0, ValueError, command,
              ": expected --data text:FILE (a text file), got '", d.source, "'");
  return d.source.substr(std::string(kTextPrefix).size());
}

std::shared_ptr<nn::Module> model_of_run(const std::string& dir, const std::string& command) {
  ANVIL_CHECK(fs::exists(fs::path(dir) / "model.json"), IOError, command, ": '", dir,
              "' has no model.json (expected a directory written by `anvil train --model gpt`)");
  auto model = io::Architecture::parse(read_file(dir + "/model.json")).build();
  const std::string weights = dir + "/weights.safetensors", ckpt = dir + "/checkpoint.safetensors";
  ANVIL_CHECK(fs::exists(weights) || fs::exists(ckpt), IOError, command, ": '", dir,
              "' holds neither weights.safetensors nor checkpoint.safetensors");
  model->load_state_dict(fs::exists(weights) ? io::load_safetensors(weights)
                                             : io::load_checkpoint(ckpt).model);
  return model;
}

}  // namespace anvil::tools
