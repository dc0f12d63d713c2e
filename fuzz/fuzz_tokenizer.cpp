// libFuzzer target for the tokenizer readers. The first byte picks what the rest is:
//   even: an anvil tokenizer document (text::parse_tokenizer, the body of load_tokenizer);
//   odd:  GPT-2's vocab.json, a NUL byte, then merges.txt (BPETokenizer::from_gpt2_bytes, the
//         body of from_gpt2_files); without a NUL, all of it is vocab.json and merges.txt is empty.
// IOError is the documented answer to a damaged file; a crash, a sanitizer report, a leak, any
// other exception or a hang is a bug in the reader. What loads must work: it encodes a sample
// and the input itself and decodes them back byte for byte, and its own document reads back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "anvil/core/error.h"
#include "anvil/text/bpe_tokenizer.h"
#include "anvil/text/tokenizer.h"

namespace {

using anvil::text::Tokenizer;

const std::string kSample =
    "Hello world! It's 3.14 'tis, naïve Ωμέγα 日本語 😀  \n\n\t<|endoftext|> end\xff\xc3(";

void check(bool ok) {
  if (!ok) std::abort();
}

void exercise(const Tokenizer& tok, std::string_view input) {
  for (std::string_view text : {std::string_view(kSample), input.substr(0, 512)}) {
    const std::vector<int64_t> ids = tok.encode(text);
    for (int64_t id : ids) check(id >= 0 && id < tok.vocab_size());
    check(tok.decode(ids) == text);
    check(tok.decode(tok.encode_with_special_tokens(text)) == text);
  }
  // Its own document must read back as the same tokenizer.
  std::unique_ptr<Tokenizer> back;
  try {
    back = anvil::text::parse_tokenizer(tok.to_json().dump(), "round-trip");
  } catch (const anvil::IOError&) {
    std::abort();
  }
  check(back->vocab_size() == tok.vocab_size() && back->to_json() == tok.to_json());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] % 2 == 0) {
      exercise(*anvil::text::parse_tokenizer(input, "fuzz-input"), input);
    } else {
      const size_t nul = input.find('\0');
      const std::string_view vocab = input.substr(0, nul);
      const std::string_view merges = nul == std::string_view::npos ? "" : input.substr(nul + 1);
      exercise(anvil::text::BPETokenizer::from_gpt2_bytes(vocab, merges), input);
    }
  } catch (const anvil::IOError&) {  // the documented answer to a damaged file
  }
  return 0;
}
