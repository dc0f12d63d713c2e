// Tokenizer: text (bytes) to token ids and back, the interface every anvil tokenizer shares.
//
//   auto tok = text::load_tokenizer("runs/fortunes/tokenizer.json");  // any kind, see below
//   std::vector<int64_t> ids = tok->encode("Hello world");
//   std::string back = tok->decode(ids);                                // == "Hello world"
//   int64_t eot = tok->special_token("<|endoftext|>");
//
// Text is bytes. encode() takes any bytes, valid UTF-8 or not, and decode(encode(s)) == s for
// every s; decode() returns bytes too, which need not be valid UTF-8 when the ids split a
// character (decode a whole sequence, not token by token, to print it).
//
// Special tokens ("<|endoftext|>", "<|pad|>", ...) are ids with a name that stand outside the
// text: encode() treats their names as ordinary text (so user text can never forge one), while
// encode_with_special_tokens() turns each occurrence of a name into its id, as Hugging Face's
// tokenizers do for added tokens. decode() writes a special token as its name.
//
// Files. save() writes anvil's own JSON document,
//   {"format": "anvil-tokenizer", "format_version": 1, "type": "byte" | "bpe", ...}
// (see ByteTokenizer and BPETokenizer for the rest), to a temporary file that is flushed and
// renamed, so a crash never leaves half a file. load_tokenizer() reads such a document, or a
// directory holding GPT-2's vocab.json + merges.txt, and returns the right kind.
//
// Tokenizers are immutable after construction; encode() and decode() may be called from several
// threads at once.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "anvil/core/tensor.h"

namespace anvil::text {

inline constexpr const char* kTokenizerFormat = "anvil-tokenizer";
inline constexpr int64_t kTokenizerVersion = 1;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // "byte" or "bpe": the "type" of its file.
  virtual std::string type() const = 0;
  // Number of ids, special tokens included: every id lies in [0, vocab_size()).
  virtual int64_t vocab_size() const = 0;

  // The ids of `text`; the names of special tokens in it are ordinary text.
  virtual std::vector<int64_t> encode(std::string_view text) const = 0;
  // The ids of `text` where each occurrence of a special token's name becomes its id (leftmost
  // first; of names starting at the same byte, the longest) and the text between is encode()d.
  std::vector<int64_t> encode_with_special_tokens(std::string_view text) const;

  // The bytes of `ids` concatenated; a special token gives its name. Throws IndexError for an
  // id outside [0, vocab_size()).
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  // The same for a 1-D integer tensor (any device; int64 or int32). Throws DTypeError or
  // ShapeError otherwise.
  std::string decode(const Tensor& ids) const;

  // Special tokens by name, with their ids.
  const std::map<std::string, int64_t>& special_tokens() const { return special_tokens_; }
  bool has_special_token(const std::string& name) const { return special_tokens_.count(name) > 0; }
  // The id of special token `name`. Throws ValueError (listing the names there are) if none.
  int64_t special_token(const std::string& name) const;
  // Whether `id` is a special token's id.
  bool is_special(int64_t id) const;

  // The anvil JSON document of this tokenizer (what save() writes).
  virtual nlohmann::json to_json() const = 0;
  // Writes to_json() to `path` atomically (temporary file, fsync, rename). Throws IOError naming
  // the file.
  void save(const std::string& path) const;

 protected:
  Tokenizer() = default;
  explicit Tokenizer(std::map<std::string, int64_t> special_tokens);
  // The special tokens as JSON: {"<name>": id, ...}.
  nlohmann::json special_tokens_json() const;
  // The name of the special token with this id, or null if `id` is not one.
  const std::string* special_name(int64_t id) const;

 private:
  std::map<std::string, int64_t> special_tokens_;
  std::map<int64_t, std::string> special_names_;  // id -> name
};

// The tokenizer in `path`: an anvil JSON document (Tokenizer::save), or a directory with GPT-2's
// vocab.json and merges.txt (BPETokenizer::from_gpt2_files, "<|endoftext|>" its special token,
// if it has one). Throws IOError naming the file and what is wrong with it (missing, not JSON, an
// unknown format, type or version, inconsistent contents); nothing half-built is ever returned.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

// The same from an anvil JSON document's bytes in memory; `name` stands for the file in messages.
std::unique_ptr<Tokenizer> parse_tokenizer(std::string_view document, const std::string& name);

}  // namespace anvil::text
