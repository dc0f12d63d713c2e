// safetensors files (Hugging Face's format): an 8-byte little-endian header length, a JSON
// header naming each tensor's dtype, shape and byte range, then the raw little-endian data.
// A PyTorch state dict saved with safetensors.torch.save_file loads here under the same
// names, and the other way round.
#pragma once
#include <map>
#include <string>
#include <string_view>

#include "anvil/core/state_dict.h"

namespace anvil::io {

// Writes the tensors (from any device; contiguous copies are made) and string metadata to
// `path` atomically (temporary file, fsync, rename). Throws IOError naming the file, and
// ValueError when a tensor name or metadata string is not valid UTF-8.
void save_safetensors(const StateDict& tensors, const std::string& path,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor onto the CPU. Throws IOError naming the file and the damage: missing,
// too short, a header that is not JSON (or nests deeper than 64 levels), an unknown dtype, a
// shape whose size overflows 64 bits, byte ranges that overlap, leave gaps or run past the end,
// or sizes that do not match the shape. Nothing is allocated before the header checks out.
StateDict load_safetensors(const std::string& path,
                           std::map<std::string, std::string>* metadata = nullptr);

// The same, from a file's bytes already in memory; `name` stands for the file in messages.
StateDict load_safetensors_bytes(std::string_view bytes, const std::string& name,
                                 std::map<std::string, std::string>* metadata = nullptr);

}  // namespace anvil::io
