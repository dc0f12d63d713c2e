#include "anvil/text/bpe_tokenizer.h"

#include <algorithm>
#include <climits>
#include <mutex>

#include "anvil/core/error.h"
#include "anvil/text/byte_level.h"
#include "anvil/text/pretokenize.h"
#include "text/file_checks.h"

namespace anvil::text {
namespace {

uint64_t pair_key(int64_t left, int64_t right) { return uint64_t(left) << 32 | uint64_t(right); }

// A token's bytes for a message: its byte-level spelling, cut short.
std::string shown(const std::string& bytes) {
  std::string s = to_byte_level(bytes);
  return s.size() <= 40 ? s : s.substr(0, 37) + "...";
}

constexpr size_t kMaxCachedPieces = 65536;
constexpr size_t kMaxCachedPieceBytes = 256;  // longer pieces are rare: not worth their memory

}  // namespace

struct BPETokenizer::PieceCache {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> pieces;
};

BPETokenizer::PieceCacheHandle::PieceCacheHandle() : cache(std::make_unique<PieceCache>()) {}
BPETokenizer::PieceCacheHandle::PieceCacheHandle(const PieceCacheHandle&) : PieceCacheHandle() {}
BPETokenizer::PieceCacheHandle& BPETokenizer::PieceCacheHandle::operator=(const PieceCacheHandle&) {
  cache = std::make_unique<PieceCache>();
  return *this;
}
BPETokenizer::PieceCacheHandle::~PieceCacheHandle() = default;

BPETokenizer::BPETokenizer(std::vector<std::string> tokens,
                           const std::vector<std::pair<int64_t, int64_t>>& merges,
                           std::map<std::string, int64_t> special_tokens)
    : BPETokenizer(std::move(tokens), merges, std::move(special_tokens),
                   [](const std::string& what) { throw ValueError("BPETokenizer: " + what); }) {}

BPETokenizer::BPETokenizer(std::vector<std::string> tokens,
                           const std::vector<std::pair<int64_t, int64_t>>& merges,
                           std::map<std::string, int64_t> special_tokens,
                           const std::function<void(const std::string&)>& fail)
    : Tokenizer(special_tokens), tokens_(std::move(tokens)), merges_(merges) {
  using detail::cat;
  const int64_t n = int64_t(tokens_.size());
  if (n < 256) fail(cat("expected at least 256 tokens (one per byte), got ", n));
  if (n > INT32_MAX) fail(cat("expected at most ", INT32_MAX, " tokens, got ", n));
  if (int64_t(merges_.size()) > INT32_MAX) fail(cat("too many merges: ", merges_.size()));

  std::vector<bool> special(size_t(n), false);
  for (const auto& [name, id] : special_tokens) {
    const std::string bad = detail::check_special_name(name);
    if (!bad.empty()) fail(bad);
    if (id < 0 || id >= n)
      fail(cat("special token \"", name, "\" has id ", id, ", outside [0, ", n, ")"));
    if (special[size_t(id)]) fail(cat("two special tokens share the id ", id));
    special[size_t(id)] = true;
    if (tokens_[size_t(id)] != name)
      fail(cat("token ", id, " should be special token \"", name, "\"'s name, got \"",
               shown(tokens_[size_t(id)]), "\""));
  }
  ids_.reserve(size_t(n));
  for (int64_t id = 0; id < n; ++id) {
    if (special[size_t(id)]) continue;
    const std::string& t = tokens_[size_t(id)];
    if (t.empty()) fail(cat("token ", id, " is empty"));
    auto [it, fresh] = ids_.emplace(t, int32_t(id));
    if (!fresh) fail(cat("tokens ", it->second, " and ", id, " are both \"", shown(t), "\""));
  }
  for (int b = 0; b < 256; ++b) {
    auto it = ids_.find(std::string(1, char(b)));
    if (it == ids_.end())
      fail(cat("no token holds the byte ", b, " (\"", shown(std::string(1, char(b))), "\")"));
    byte_ids_[size_t(b)] = it->second;
  }
  std::vector<bool> made(size_t(n), false);
  merge_of_.reserve(merges_.size());
  for (size_t rank = 0; rank < merges_.size(); ++rank) {
    const auto [left, right] = merges_[rank];
    for (int64_t part : {left, right}) {
      if (part < 0 || part >= n)
        fail(cat("merge ", rank, " joins token ", part, ", outside [0, ", n, ")"));
      if (special[size_t(part)]) fail(cat("merge ", rank, " joins special token ", part));
    }
    const std::string joined = tokens_[size_t(left)] + tokens_[size_t(right)];
    auto it = ids_.find(joined);
    if (it == ids_.end())
      fail(cat("merge ", rank, " (", left, ", ", right, ") makes \"", shown(joined),
               "\", which is not a token"));
    auto [m, fresh] = merge_of_.emplace(pair_key(left, right), Merge{int32_t(rank), it->second});
    if (!fresh)
      fail(cat("merge ", rank, " repeats merge ", m->second.rank, " (", left, ", ", right, ")"));
    made[size_t(it->second)] = true;
  }
  for (int64_t id = 0; id < n; ++id)
    if (!special[size_t(id)] && !made[size_t(id)] && tokens_[size_t(id)].size() > 1)
      fail(cat("token ", id, " (\"", shown(tokens_[size_t(id)]),
               "\") is neither a byte, a merge's result nor a special token"));
}

void BPETokenizer::encode_piece(std::string_view piece, std::vector<int64_t>& out) const {
  if (piece.size() == 1) {
    out.push_back(byte_ids_[uint8_t(piece[0])]);
    return;
  }
  PieceCache& cache = *cache_.cache;
  const bool cached = piece.size() <= kMaxCachedPieceBytes;
  if (cached) {
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto it = cache.pieces.find(piece);
    if (it != cache.pieces.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  // The symbols of the piece as a linked list; a min-heap of the possible merges by (rank,
  // position): the pair of lowest rank is merged first, the leftmost of equal ranks first.
  struct Symbol {
    int32_t id, prev, next;
    bool alive;
  };
  struct Candidate {
    int32_t rank, pos, result;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  const int32_t n = int32_t(piece.size());
  std::vector<Symbol> sym(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i)
    sym[size_t(i)] = {byte_ids_[uint8_t(piece[size_t(i)])], i - 1, i + 1 < n ? i + 1 : -1, true};
  std::vector<Candidate> heap;
  auto consider = [&](int32_t pos) {
    const int32_t next = sym[size_t(pos)].next;
    if (next < 0) return;
    auto it = merge_of_.find(pair_key(sym[size_t(pos)].id, sym[size_t(next)].id));
    if (it == merge_of_.end()) return;
    heap.push_back({it->second.rank, pos, it->second.result});
    std::push_heap(heap.begin(), heap.end(), std::greater<>());
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& s = sym[size_t(c.pos)];
    if (!s.alive || s.next < 0) continue;
    // Still the pair it was? (A neighbour may have been merged away since.)
    auto it = merge_of_.find(pair_key(s.id, sym[size_t(s.next)].id));
    if (it == merge_of_.end() || it->second.result != c.result) continue;
    Symbol& right = sym[size_t(s.next)];
    right.alive = false;
    s.id = c.result;
    s.next = right.next;
    if (s.next >= 0) sym[size_t(s.next)].prev = c.pos;
    if (s.prev >= 0) consider(s.prev);
    consider(c.pos);
  }
  std::vector<int32_t> ids;
  for (int32_t i = 0; i >= 0; i = sym[size_t(i)].next) ids.push_back(sym[size_t(i)].id);
  out.insert(out.end(), ids.begin(), ids.end());
  if (!cached) return;
  std::lock_guard<std::mutex> lock(cache.mutex);
  if (cache.pieces.size() >= kMaxCachedPieces) cache.pieces.clear();
  cache.pieces.emplace(std::string(piece), std::move(ids));
}

std::vector<int64_t> BPETokenizer::encode(std::string_view text) const {
  std::vector<int64_t> out;
  out.reserve(text.size() / 3);
  for (std::string_view piece : gpt2_pretokenize(text)) encode_piece(piece, out);
  return out;
}

std::string BPETokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  const int64_t n = vocab_size();
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    ANVIL_CHECK(id >= 0 && id < n, IndexError, "BPETokenizer::decode: id ", id, " (position ", i,
                ") is out of range for a vocabulary of ", n, " tokens");
    out += tokens_[size_t(id)];
  }
  return out;
}

const std::string& BPETokenizer::token(int64_t id) const {
  ANVIL_CHECK(id >= 0 && id < vocab_size(), IndexError, "BPETokenizer::token: id ", id,
              " is out of range for a vocabulary of ", vocab_size(), " tokens");
  return tokens_[size_t(id)];
}

std::optional<int64_t> BPETokenizer::token_id(std::string_view bytes) const {
  auto it = ids_.find(std::string(bytes));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

nlohmann::json BPETokenizer::to_json() const {
  nlohmann::json vocab = nlohmann::json::array(), merges = nlohmann::json::array();
  for (int64_t id = 0; id < vocab_size(); ++id)
    vocab.push_back(is_special(id) ? tokens_[size_t(id)] : to_byte_level(tokens_[size_t(id)]));
  for (const auto& [left, right] : merges_) merges.push_back({left, right});
  return {{"format", kTokenizerFormat},
          {"format_version", kTokenizerVersion},
          {"type", "bpe"},
          {"pretokenizer", "gpt2"},
          {"vocab", std::move(vocab)},
          {"merges", std::move(merges)},
          {"special_tokens", special_tokens_json()}};
}

BPETokenizer BPETokenizer::from_json(const nlohmann::json& document, const std::string& name) {
  using detail::json;
  const detail::Damaged damaged{"load_tokenizer", name};
  if (!document.is_object()) damaged("it is not a JSON object");
  const json& pre =
      detail::field(document, "pretokenizer", json::value_t::string, "a string", damaged);
  if (pre != "gpt2") damaged("\"pretokenizer\" should be \"gpt2\", got " + detail::brief(pre));
  const json& vocab = detail::field(document, "vocab", json::value_t::array, "an array", damaged);
  const json& merges = detail::field(document, "merges", json::value_t::array, "an array", damaged);
  const int64_t n = int64_t(vocab.size());
  std::map<std::string, int64_t> specials =
      detail::special_tokens_of(document, std::max<int64_t>(n, 1), damaged);
  std::vector<bool> special(size_t(n), false);
  for (const auto& [token, id] : specials)
    if (id < n) special[size_t(id)] = true;
  std::vector<std::string> tokens(static_cast<size_t>(n));
  for (int64_t id = 0; id < n; ++id) {
    const json& v = vocab[size_t(id)];
    if (!v.is_string())
      damaged(detail::cat("vocab entry ", id, " should be a string, got ", detail::brief(v)));
    const std::string& s = v.get_ref<const std::string&>();
    if (special[size_t(id)]) {
      tokens[size_t(id)] = s;
      continue;
    }
    std::optional<std::string> bytes = from_byte_level(s);
    if (!bytes)
      damaged(detail::cat("vocab entry ", id, " (", detail::brief(v), ") is not byte-level text"));
    tokens[size_t(id)] = std::move(*bytes);
  }
  std::vector<std::pair<int64_t, int64_t>> pairs;
  pairs.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const json& m = merges[rank];
    if (!m.is_array() || m.size() != 2)
      damaged(detail::cat("merge ", rank, " should be a pair of ids, got ", detail::brief(m)));
    const std::string what = detail::cat("an id of merge ", rank);
    pairs.emplace_back(detail::integer_in(m[0], 0, std::max<int64_t>(n - 1, 0), what, damaged),
                       detail::integer_in(m[1], 0, std::max<int64_t>(n - 1, 0), what, damaged));
  }
  return BPETokenizer(std::move(tokens), pairs, std::move(specials), damaged);
}

}  // namespace anvil::text
