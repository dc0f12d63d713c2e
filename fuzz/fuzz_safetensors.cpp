// libFuzzer target for the safetensors reader: the input is a whole file. IOError is the
// documented answer to a damaged one; a crash, a sanitizer report, a leak, any other exception
// (std::bad_alloc from a declared size, another anvil::Error) or a hang is a bug in the reader.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "anvil/core/error.h"
#include "anvil/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> metadata;
  try {
    anvil::StateDict tensors = anvil::io::load_safetensors_bytes(bytes, "fuzz-input", &metadata);
    for (const auto& [name, t] : tensors) {  // what loads must be whole: ASan checks the ends
      const size_t n = size_t(t.numel()) * t.element_size();
      if (n > 0) {
        const volatile uint8_t* p = static_cast<const uint8_t*>(t.data_ptr());
        (void)p[0];
        (void)p[n - 1];
      }
    }
  } catch (const anvil::IOError&) {  // the documented answer to a damaged file
  }
  return 0;
}
