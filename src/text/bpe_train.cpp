// BPETokenizer::train: byte-pair merges learned from a corpus, with pair counts updated
// incrementally.
//
// The corpus is cut into pieces (gpt2_pretokenize) and each distinct piece ("word") is kept once
// with its count. pair_count holds, for every adjacent pair of tokens, how often it occurs in the
// corpus; where_ lists the words that may hold it. A max-heap orders the pairs by count (ties by
// their bytes); its entries may be stale, since counts only ever fall except for the pairs a
// merge creates, which are pushed afresh: an entry whose count no longer matches is pushed
// again with the current one. Merging a pair revisits only the words where it occurs.
#include <algorithm>
#include <climits>
#include <unordered_map>

#include "anvil/core/error.h"
#include "anvil/text/bpe_tokenizer.h"
#include "anvil/text/pretokenize.h"
#include "text/file_checks.h"

namespace anvil::text {
namespace {

uint64_t key_of(int32_t left, int32_t right) {
  return uint64_t(uint32_t(left)) << 32 | uint32_t(right);
}
int32_t left_of(uint64_t key) { return int32_t(key >> 32); }
int32_t right_of(uint64_t key) { return int32_t(key & 0xffffffffu); }

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

struct Candidate {
  int64_t count;
  uint64_t pair;
};

class Trainer {
 public:
  Trainer(std::string_view corpus, int64_t min_frequency) : min_frequency_(min_frequency) {
    for (int b = 0; b < 256; ++b) tokens_.emplace_back(1, char(b));
    for (int b = 0; b < 256; ++b) ids_.emplace(tokens_[size_t(b)], b);
    std::unordered_map<std::string_view, int64_t> counts;
    for (std::string_view piece : gpt2_pretokenize(corpus)) ++counts[piece];
    words_.reserve(counts.size());
    for (const auto& [piece, count] : counts) {
      Word w{std::vector<int32_t>(piece.size()), count};
      for (size_t i = 0; i < piece.size(); ++i) w.symbols[i] = uint8_t(piece[i]);
      words_.push_back(std::move(w));
    }
    for (size_t w = 0; w < words_.size(); ++w) {
      const Word& word = words_[w];
      for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
        const uint64_t pair = key_of(word.symbols[i], word.symbols[i + 1]);
        pair_count_[pair] += word.count;
        note_word(pair, int32_t(w));
      }
    }
    for (const auto& [pair, count] : pair_count_) push({count, pair});
    visited_.assign(words_.size(), -1);
  }

  // Learns merges until there are `tokens` tokens or no pair is frequent enough.
  void run(size_t tokens) {
    while (tokens_.size() < tokens && !heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), before_);
      const Candidate top = heap_.back();
      heap_.pop_back();
      auto it = pair_count_.find(top.pair);
      const int64_t now = it == pair_count_.end() ? 0 : it->second;
      if (now != top.count) {  // stale: the count fell since it was pushed
        if (now > 0) push({now, top.pair});
        continue;
      }
      if (top.count < min_frequency_) break;
      merge(top.pair);
    }
  }

  std::vector<std::string> tokens_;
  std::vector<std::pair<int64_t, int64_t>> merges_;

 private:
  // The heap's order: more frequent first; of equal counts, the pair whose (left bytes, right
  // bytes) sort first. (std heaps put the greatest first, so this is "less urgent than".)
  struct Before {
    const std::vector<std::string>* tokens;
    bool operator()(const Candidate& a, const Candidate& b) const {
      if (a.count != b.count) return a.count < b.count;
      const std::string &al = (*tokens)[size_t(left_of(a.pair))],
                        &bl = (*tokens)[size_t(left_of(b.pair))];
      if (al != bl) return al > bl;
      return (*tokens)[size_t(right_of(a.pair))] > (*tokens)[size_t(right_of(b.pair))];
    }
  };

  void push(Candidate c) {
    heap_.push_back(c);
    std::push_heap(heap_.begin(), heap_.end(), before_);
  }

  void note_word(uint64_t pair, int32_t w) {
    std::vector<int32_t>& list = where_[pair];
    if (list.empty() || list.back() != w) list.push_back(w);
  }

  void merge(uint64_t pair) {
    const int32_t left = left_of(pair), right = right_of(pair);
    std::string joined = tokens_[size_t(left)] + tokens_[size_t(right)];
    auto [it, fresh] = ids_.emplace(joined, int32_t(tokens_.size()));
    if (fresh) tokens_.push_back(std::move(joined));
    const int32_t made = it->second;
    const int32_t step = int32_t(merges_.size());
    merges_.emplace_back(left, right);

    std::vector<int32_t> words = std::move(where_[pair]);
    where_.erase(pair);
    std::vector<uint64_t> created;
    std::vector<int32_t> merged;
    for (int32_t w : words) {
      if (visited_[size_t(w)] == step) continue;
      visited_[size_t(w)] = step;
      Word& word = words_[size_t(w)];
      std::vector<int32_t>& s = word.symbols;
      bool holds = false;
      for (size_t i = 0; i + 1 < s.size() && !holds; ++i) holds = s[i] == left && s[i + 1] == right;
      if (!holds) continue;  // a stale entry: an earlier merge took the pair out of this word
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        auto c = pair_count_.find(key_of(s[i], s[i + 1]));
        if ((c->second -= word.count) == 0) pair_count_.erase(c);
      }
      merged.clear();
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == left && s[i + 1] == right) {
          merged.push_back(made);
          ++i;
        } else {
          merged.push_back(s[i]);
        }
      }
      s.swap(merged);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t p = key_of(s[i], s[i + 1]);
        pair_count_[p] += word.count;
        if (s[i] == made || s[i + 1] == made) {
          note_word(p, w);
          created.push_back(p);
        }
      }
    }
    std::sort(created.begin(), created.end());
    created.erase(std::unique(created.begin(), created.end()), created.end());
    for (uint64_t p : created) push({pair_count_[p], p});
  }

  int64_t min_frequency_;
  std::vector<Word> words_;
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<uint64_t, int64_t> pair_count_;
  std::unordered_map<uint64_t, std::vector<int32_t>> where_;
  std::vector<Candidate> heap_;
  Before before_{&tokens_};
  std::vector<int32_t> visited_;  // the merge step that last revisited each word
};

}  // namespace

BPETokenizer BPETokenizer::train(std::string_view corpus, int64_t vocab_size,
                                 const BPETrainOptions& options) {
  const int64_t k = int64_t(options.special_tokens.size());
  ANVIL_CHECK(vocab_size >= 256 + k && vocab_size <= INT32_MAX, ValueError,
              "BPETokenizer::train: expected vocab_size in [", 256 + k, ", ", INT32_MAX,
              "] (256 bytes + ", k, " special tokens), got ", vocab_size);
  ANVIL_CHECK(options.min_frequency >= 1, ValueError,
              "BPETokenizer::train: expected min_frequency >= 1, got ", options.min_frequency);
  std::map<std::string, int64_t> names;
  for (const std::string& name : options.special_tokens) {
    const std::string bad = detail::check_special_name(name);
    ANVIL_CHECK(bad.empty(), ValueError, "BPETokenizer::train: ", bad);
    ANVIL_CHECK(names.emplace(name, 0).second, ValueError, "BPETokenizer::train: special token '",
                name, "' is named twice");
  }
  Trainer trainer(corpus, options.min_frequency);
  trainer.run(size_t(vocab_size - k));
  std::vector<std::string> tokens = std::move(trainer.tokens_);
  std::map<std::string, int64_t> specials;
  for (const std::string& name : options.special_tokens) {
    specials[name] = int64_t(tokens.size());
    tokens.push_back(name);
  }
  return BPETokenizer(std::move(tokens), trainer.merges_, std::move(specials));
}

}  // namespace anvil::text
