#include "anvil/text/tokenizer.h"

#include <filesystem>
#include <limits>

#include "anvil/core/error.h"
#include "anvil/core/file.h"
#include "anvil/text/bpe_tokenizer.h"
#include "anvil/text/byte_tokenizer.h"
#include "text/file_checks.h"

namespace anvil::text {

Tokenizer::Tokenizer(std::map<std::string, int64_t> special_tokens)
    : special_tokens_(std::move(special_tokens)) {
  for (const auto& [name, id] : special_tokens_) special_names_[id] = name;
}

std::vector<int64_t> Tokenizer::encode_with_special_tokens(std::string_view text) const {
  if (special_tokens_.empty()) return encode(text);
  // The next occurrence of each name at or after `pos`, found again only once passed.
  struct Next {
    const std::string* name;
    int64_t id;
    size_t at;
  };
  std::vector<Next> next;
  for (const auto& [name, id] : special_tokens_) next.push_back({&name, id, text.find(name)});
  std::vector<int64_t> ids;
  size_t pos = 0;
  while (true) {
    const Next* best = nullptr;
    for (Next& n : next) {
      if (n.at != std::string_view::npos && n.at < pos) n.at = text.find(*n.name, pos);
      if (n.at == std::string_view::npos) continue;
      if (!best || n.at < best->at || (n.at == best->at && n.name->size() > best->name->size()))
        best = &n;
    }
    if (!best) break;
    std::vector<int64_t> part = encode(text.substr(pos, best->at - pos));
    ids.insert(ids.end(), part.begin(), part.end());
    ids.push_back(best->id);
    pos = best->at + best->name->size();
  }
  std::vector<int64_t> rest = encode(text.substr(pos));
  ids.insert(ids.end(), rest.begin(), rest.end());
  return ids;
}

std::string Tokenizer::decode(const Tensor& ids) const {
  ANVIL_CHECK(ids.defined(), ValueError, "decode: expected a tensor of ids, got an undefined one");
  ANVIL_CHECK(ids.dtype() == kInt64 || ids.dtype() == kInt32, DTypeError,
              "decode: expected int64 or int32 ids, got ", dtype_name(ids.dtype()));
  ANVIL_CHECK(ids.dim() == 1, ShapeError, "decode: expected a 1-D tensor of ids, got shape ",
              to_string(ids.shape()));
  return decode(ids.to(kCPU, kInt64).contiguous().to_vector<int64_t>());
}

int64_t Tokenizer::special_token(const std::string& name) const {
  auto it = special_tokens_.find(name);
  if (it != special_tokens_.end()) return it->second;
  std::string names;
  for (const auto& [n, id] : special_tokens_) names += (names.empty() ? "" : ", ") + n;
  throw ValueError(detail::cat("special_token: this ", type(), " tokenizer has no special token '",
                               name, "' (it has ", names.empty() ? "none" : names, ")"));
}

bool Tokenizer::is_special(int64_t id) const { return special_names_.count(id) > 0; }

const std::string* Tokenizer::special_name(int64_t id) const {
  auto it = special_names_.find(id);
  return it == special_names_.end() ? nullptr : &it->second;
}

nlohmann::json Tokenizer::special_tokens_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, id] : special_tokens_) j[name] = id;
  return j;
}

void Tokenizer::save(const std::string& path) const {
  write_file_atomic(path, to_json().dump() + "\n");
}

std::unique_ptr<Tokenizer> parse_tokenizer(std::string_view document, const std::string& name) {
  using detail::json;
  const detail::Damaged damaged{"load_tokenizer", name};
  const json doc = detail::parse_json(document, damaged);
  if (!doc.is_object()) damaged("it is not a JSON object");
  const json& format = detail::field(doc, "format", json::value_t::string, "a string", damaged);
  if (format != kTokenizerFormat)
    damaged(detail::cat("\"format\" should be \"", kTokenizerFormat, "\", got ",
                        detail::brief(format)));
  auto version_it = doc.find("format_version");
  if (version_it == doc.end()) damaged("it has no \"format_version\"");
  const int64_t version = detail::integer_in(*version_it, 1, std::numeric_limits<int64_t>::max(),
                                             "\"format_version\"", damaged);
  if (version > kTokenizerVersion)
    damaged(detail::cat("its format_version is ", version, ", newer than this anvil's (",
                        kTokenizerVersion, ")"));
  const json& type = detail::field(doc, "type", json::value_t::string, "a string", damaged);
  if (type == "byte") return std::make_unique<ByteTokenizer>(ByteTokenizer::from_json(doc, name));
  if (type == "bpe") return std::make_unique<BPETokenizer>(BPETokenizer::from_json(doc, name));
  damaged(detail::cat("\"type\" should be \"byte\" or \"bpe\", got ", detail::brief(type)));
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    const std::filesystem::path dir(path);
    return std::make_unique<BPETokenizer>(BPETokenizer::from_gpt2_files(
        (dir / "vocab.json").string(), (dir / "merges.txt").string()));
  }
  std::string bytes;
  try {
    bytes = read_file(path);
  } catch (const IOError& e) {
    throw IOError(detail::cat("load_tokenizer: ", e.what()));
  }
  return parse_tokenizer(bytes, path);
}

}  // namespace anvil::text
