// BPETokenizer: GPT-2's byte-level byte-pair encoding.
//
//   std::string corpus = text::load_text(files);
//   auto tok = text::BPETokenizer::train(corpus, 4096, {.special_tokens = {"<|endoftext|>"}});
//   tok.save("tokenizer.json");            // anvil's JSON
//   tok.save_gpt2_files("gpt2-tokenizer"); // vocab.json + merges.txt, as GPT-2 ships them
//   auto gpt2 = text::BPETokenizer::from_gpt2_files("gpt2/vocab.json", "gpt2/merges.txt");
//
// Encoding. The text is split into pieces by GPT-2's pre-tokeniser (text::gpt2_pretokenize);
// each piece starts as one token per byte and is then merged pair by pair, always the adjacent
// pair whose merge has the lowest rank (the earliest learned), the leftmost of equals first, until
// no adjacent pair has a merge. This is what Hugging Face's GPT2Tokenizer(Fast) computes, so a
// tokenizer read from GPT-2's files gives GPT-2's ids. Pieces of up to 256 bytes are cached (up
// to 65536 distinct pieces, then the cache starts over).
//
// Tokens. Every token is a byte string; ids are dense, 0..vocab_size()-1. A tokenizer holds a
// token for each of the 256 bytes (so every text encodes), one per merge result, and its special
// tokens. train() numbers them: byte b is id b, then the merges in the order learned, then the
// special tokens; a file read keeps its ids.
//
// anvil's file (Tokenizer::save):
//   {"format": "anvil-tokenizer", "format_version": 1, "type": "bpe", "pretokenizer": "gpt2",
//    "vocab": ["!", "\"", ..., "Ġthe", ..., "<|endoftext|>"],   one string per id, in id order
//    "merges": [[71, 68], [256, 101], ...],                     (left id, right id) by rank
//    "special_tokens": {"<|endoftext|>": 4095}}
// vocab strings are GPT-2's byte-level spelling of the token's bytes (text::to_byte_level: "Ġ"
// for a space), as in GPT-2's vocab.json; at a special token's id, its name as is.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "anvil/text/tokenizer.h"

namespace anvil::text {

struct BPETrainOptions {
  // Added after the learned tokens, in this order: the last ids of the vocabulary.
  std::vector<std::string> special_tokens = {};
  // Training stops early, with a smaller vocabulary than asked for, once the most frequent pair
  // occurs fewer times than this (a pair seen once teaches nothing).
  int64_t min_frequency = 2;
};

class BPETokenizer : public Tokenizer {
 public:
  // A tokenizer from its parts: tokens[id] is the bytes of token `id` (at a special token's id,
  // its name); merges[rank] = (left id, right id), whose result is the token spelled
  // tokens[left] + tokens[right]; special_tokens maps names to ids. Throws ValueError unless every
  // byte has a one-byte token, each merge's parts and result are tokens that are not special,
  // no pair is merged twice, every other token is a merge's result, byte strings are not
  // repeated, and the special tokens' ids are in range, distinct and named by their tokens.
  BPETokenizer(std::vector<std::string> tokens,
               const std::vector<std::pair<int64_t, int64_t>>& merges,
               std::map<std::string, int64_t> special_tokens = {});

  // Learns merges from `corpus` until the vocabulary (256 bytes + merges + special tokens) holds
  // vocab_size tokens, or no pair occurs options.min_frequency times. The corpus is plain text
  // (special tokens' names in it are ordinary bytes); it is split by gpt2_pretokenize and pairs
  // never cross a piece's boundary. Each step merges the pair of
  // adjacent tokens that occurs most often, counting every piece as often as it appears (the
  // overlapping pairs of "aaa" count twice); ties go to the pair whose (left bytes, right bytes)
  // sort first, bytewise, so a corpus always gives the same tokenizer. Counts are updated
  // incrementally (only the pieces holding the merged pair are revisited). Throws ValueError
  // for vocab_size < 256 + the number of special tokens, min_frequency < 1, or bad names.
  static BPETokenizer train(std::string_view corpus, int64_t vocab_size,
                            const BPETrainOptions& options = {});

  // GPT-2's pair of files, as Hugging Face's GPT2Tokenizer reads them: vocab.json, a JSON object
  // {"<byte-level token>": id}, and merges.txt, one "left right" pair per line in rank order
  // ("#version" lines, blank lines and a '\r' before a '\n' are skipped). The entries of
  // vocab.json named in `special_tokens` (GPT2Tokenizer's default, "<|endoftext|>", unless given;
  // names not in vocab.json are ignored) are special tokens; every other entry must be a byte or
  // a merge's result. Throws IOError naming the file and the damage: unreadable, not JSON, an id
  // that is not an integer, ids that are not 0..n-1 each once, a byte missing, a merge line that
  // is not two tokens, a merge of or into a token not in vocab.json, a pair merged twice, a token
  // no merge makes (as when merges.txt is cut short).
  static BPETokenizer from_gpt2_files(const std::string& vocab_path, const std::string& merges_path,
                                      const std::vector<std::string>& special_tokens = {
                                          "<|endoftext|>"});
  // The same from the files' bytes in memory; the names stand for the files in messages.
  static BPETokenizer from_gpt2_bytes(
      std::string_view vocab_json, std::string_view merges_txt,
      const std::vector<std::string>& special_tokens = {"<|endoftext|>"},
      const std::string& vocab_name = "vocab.json", const std::string& merges_name = "merges.txt");
  // Writes <dir>/vocab.json and <dir>/merges.txt ("#version: 0.2" then the merges), each
  // atomically, creating `dir` if needed; special tokens are entries of vocab.json. Throws
  // IOError naming the file.
  void save_gpt2_files(const std::string& dir) const;

  // The tokenizer an anvil document describes; `name` stands for its file in messages. Throws
  // IOError for a missing field, a value of the wrong type, an id out of range, a vocab string
  // that is not byte-level text, or parts that break the constructor's rules.
  static BPETokenizer from_json(const nlohmann::json& document, const std::string& name);

  std::string type() const override { return "bpe"; }
  int64_t vocab_size() const override { return int64_t(tokens_.size()); }
  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  using Tokenizer::decode;
  nlohmann::json to_json() const override;

  // The bytes of token `id` (a special token's name at its id). Throws IndexError out of range.
  const std::string& token(int64_t id) const;
  // The id of the (non-special) token with these bytes, if there is one.
  std::optional<int64_t> token_id(std::string_view bytes) const;
  // The merges by rank: (left id, right id).
  const std::vector<std::pair<int64_t, int64_t>>& merges() const { return merges_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  // Encoded pieces, shared by the threads that encode; copies and moves start empty.
  struct PieceCache;
  struct PieceCacheHandle {
    PieceCacheHandle();
    PieceCacheHandle(const PieceCacheHandle&);
    PieceCacheHandle& operator=(const PieceCacheHandle&);
    ~PieceCacheHandle();
    std::unique_ptr<PieceCache> cache;
  };
  // The public constructor's checks, failing through `fail` (which throws: ValueError for a
  // user's parts, IOError for a file's).
  BPETokenizer(std::vector<std::string> tokens,
               const std::vector<std::pair<int64_t, int64_t>>& merges,
               std::map<std::string, int64_t> special_tokens,
               const std::function<void(const std::string&)>& fail);
  void encode_piece(std::string_view piece, std::vector<int64_t>& out) const;

  std::vector<std::string> tokens_;               // id -> bytes
  std::unordered_map<std::string, int32_t> ids_;  // bytes -> id, special tokens left out
  std::array<int32_t, 256> byte_ids_{};           // byte -> id of its one-byte token
  std::vector<std::pair<int64_t, int64_t>> merges_;
  std::unordered_map<uint64_t, Merge> merge_of_;  // (left << 32 | right) -> its merge
  PieceCacheHandle cache_;
};

}  // namespace anvil::text
