// ByteTokenizer: one token per byte. Ids 0..255 are the byte values; special tokens follow at
// 256, 257, ... Any bytes encode (no unknown token), so it is the simplest tokenizer a language
// model can start from.
//
// File (Tokenizer::save):
//   {"format": "anvil-tokenizer", "format_version": 1, "type": "byte",
//    "special_tokens": {"<|endoftext|>": 256}}
#pragma once
#include <string>
#include <vector>

#include "anvil/text/tokenizer.h"

namespace anvil::text {

class ByteTokenizer : public Tokenizer {
 public:
  // Special tokens get the ids 256, 257, ... in the order given. Throws ValueError for an empty
  // or repeated name.
  explicit ByteTokenizer(const std::vector<std::string>& special_tokens = {});

  std::string type() const override { return "byte"; }
  int64_t vocab_size() const override { return 256 + int64_t(special_tokens().size()); }
  // One id per byte: encode("hi") == {104, 105}.
  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  using Tokenizer::decode;
  nlohmann::json to_json() const override;

  // The tokenizer a document describes; `name` stands for its file in messages. Throws IOError
  // when the special tokens' ids are not 256, 257, ... each used once, or a field is missing or
  // of the wrong type.
  static ByteTokenizer from_json(const nlohmann::json& document, const std::string& name);

 private:
  struct Checked {};  // special tokens already numbered 256, 257, ...
  ByteTokenizer(std::map<std::string, int64_t> special_tokens, Checked);
};

}  // namespace anvil::text
