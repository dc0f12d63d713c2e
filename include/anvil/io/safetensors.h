// safetensors files (Hugging Face's format): an 8-byte little-endian header length, a JSON
// header naming each tensor's dtype, shape and byte range, then the raw little-endian data.
// A PyTorch state dict saved with safetensors.torch.save_file loads here under the same
// names, and the other way round.
#pragma once
#include <map>
#include <string>

#include "anvil/core/state_dict.h"

namespace anvil::io {

// Writes the tensors (from any device; contiguous copies are made) and string metadata to
// `path` atomically (temporary file, fsync, rename). Throws IOError naming the file.
void save_safetensors(const StateDict& tensors, const std::string& path,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor onto the CPU. Throws IOError naming the file and the damage: missing,
// too short, a header that is not JSON, an unknown dtype, byte ranges that overlap, leave gaps
// or run past the end, or sizes that do not match the shape.
StateDict load_safetensors(const std::string& path,
                           std::map<std::string, std::string>* metadata = nullptr);

}  // namespace anvil::io
