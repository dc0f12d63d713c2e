// libFuzzer target for io::load_checkpoint. The first byte picks what the rest is:
//   even: a whole checkpoint file, damaged anywhere;
//   odd:  the checkpoint's metadata document, which this target writes with its correct
//         checksum around the tensors of sample_checkpoint(), so that mutations get past the
//         checksum to the checks of the document itself.
// IOError is the documented answer to bad input; a crash, a sanitizer report, a leak, any other
// exception (another anvil::Error included) or a hang is a bug in the reader.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "anvil/core/error.h"
#include "anvil/io/checkpoint.h"
#include "anvil/io/safetensors.h"
#include "io/crc32c.h"
#include "sample_checkpoint.h"

namespace {
namespace fs = std::filesystem;

fs::path work_dir;  // private to this process, in memory where /dev/shm exists

const std::string kWorkPrefix = "anvil-fuzz-checkpoint-";

void remove_work_dir() {
  std::error_code ec;
  fs::remove_all(work_dir, ec);
}

// A crashed run never reaches its atexit handler: remove the directories of runs that are gone.
void remove_dead_work_dirs(const fs::path& root) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(kWorkPrefix, 0) != 0) continue;
    const pid_t pid = pid_t(std::atol(name.c_str() + kWorkPrefix.size()));
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) fs::remove_all(e.path(), ec);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fs::path root = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  remove_dead_work_dirs(root);
  work_dir = root / (kWorkPrefix + std::to_string(getpid()));
  fs::create_directories(work_dir);
  std::atexit(remove_work_dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const anvil::StateDict tensors =
      anvil::fuzz::stored_tensors(anvil::fuzz::sample_checkpoint());
  const std::string path = (work_dir / "input.safetensors").string();
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << rest;
  } else {
    char crc[9];
    std::snprintf(crc, sizeof crc, "%08x", anvil::io::crc32c(rest));
    try {
      anvil::io::save_safetensors(tensors, path,
                                  {{"anvil_checkpoint", rest}, {"anvil_checkpoint_crc32c", crc}});
    } catch (const anvil::ValueError&) {  // a document that is not UTF-8: no file to read
      return 0;
    }
  }
  try {
    anvil::io::Checkpoint ck = anvil::io::load_checkpoint(path);
    (void)ck;
  } catch (const anvil::IOError&) {  // the documented answer to a damaged file
  }
  return 0;
}
