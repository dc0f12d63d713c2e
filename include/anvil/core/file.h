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
// The temporary is named ".<basename>.tmp-<pid>-<counter>"; each write first removes the
// temporaries of the same target whose writer process no longer exists (left by a writer killed
// mid-write), never those of a running process. (Writers of one target are assumed to share a
// pid namespace: one machine, not several containers or hosts writing the same file.)
void write_file_atomic(const std::string& path, std::string_view data);

}  // namespace anvil
