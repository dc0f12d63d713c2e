#include "anvil/text/byte_tokenizer.h"

#include "anvil/core/error.h"
#include "text/file_checks.h"

namespace anvil::text {
namespace {

std::map<std::string, int64_t> numbered(const std::vector<std::string>& names) {
  std::map<std::string, int64_t> out;
  for (const std::string& name : names) {
    const std::string bad = detail::check_special_name(name);
    ANVIL_CHECK(bad.empty(), ValueError, "ByteTokenizer: ", bad);
    ANVIL_CHECK(out.emplace(name, 256 + int64_t(out.size())).second, ValueError,
                "ByteTokenizer: special token '", name, "' is named twice");
  }
  return out;
}

}  // namespace

ByteTokenizer::ByteTokenizer(const std::vector<std::string>& special_tokens)
    : Tokenizer(numbered(special_tokens)) {}

ByteTokenizer::ByteTokenizer(std::map<std::string, int64_t> special_tokens, Checked)
    : Tokenizer(std::move(special_tokens)) {}

std::vector<int64_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = uint8_t(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  out.reserve(ids.size());
  const int64_t n = vocab_size();
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    ANVIL_CHECK(id >= 0 && id < n, IndexError, "ByteTokenizer::decode: id ", id, " (position ", i,
                ") is out of range for a vocabulary of ", n, " tokens");
    if (id < 256) {
      out += char(uint8_t(id));
    } else {
      out += *special_name(id);  // ids 256.. are the special tokens, each once
    }
  }
  return out;
}

nlohmann::json ByteTokenizer::to_json() const {
  return {{"format", kTokenizerFormat},
          {"format_version", kTokenizerVersion},
          {"type", "byte"},
          {"special_tokens", special_tokens_json()}};
}

ByteTokenizer ByteTokenizer::from_json(const nlohmann::json& document, const std::string& name) {
  const detail::Damaged damaged{"load_tokenizer", name};
  const auto& specials = detail::field(document, "special_tokens", nlohmann::json::value_t::object,
                                       "an object", damaged);
  const int64_t n = 256 + int64_t(specials.size());
  std::map<std::string, int64_t> tokens = detail::special_tokens_of(document, n, damaged);
  std::vector<bool> used(size_t(n), false);
  for (const auto& [token, id] : tokens) {
    const std::string bad = detail::check_special_name(token);
    if (!bad.empty()) damaged(bad);
    if (id < 256)
      damaged(detail::cat("special token \"", token, "\" has id ", id, ", which is byte ", id,
                          "'s (special tokens are 256, 257, ...)"));
    if (used[size_t(id)]) damaged(detail::cat("two special tokens share the id ", id));
    used[size_t(id)] = true;
  }
  return ByteTokenizer(std::move(tokens), Checked{});
}

}  // namespace anvil::text
