// Whole-file reads and crash-safe writes.
#pragma once
#include <string>
#include <string_view>

namespace anvil {

// The bytes of `path`. Throws IOError naming the file and the reason.
std::string read_file(const std::string& path);

// Writes `data` to `path` so that a crash never leaves a half-written file: the bytes go to a
// temporary file in the same directory, which is flushed to disk (fsync) and then renamed over
// `path`. Throws IOError naming the file; the previous contents of `path` survive any failure.
void write_file_atomic(const std::string& path, std::string_view data);

}  // namespace anvil
