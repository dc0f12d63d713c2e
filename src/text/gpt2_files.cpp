// GPT-2's vocab.json + merges.txt, read and written as Hugging Face's GPT2Tokenizer does.
#include <filesystem>
#include <unordered_set>

#include "anvil/core/error.h"
#include "anvil/core/file.h"
#include "anvil/text/bpe_tokenizer.h"
#include "anvil/text/byte_level.h"
#include "text/file_checks.h"

namespace anvil::text {

BPETokenizer BPETokenizer::from_gpt2_files(const std::string& vocab_path,
                                           const std::string& merges_path,
                                           const std::vector<std::string>& special_tokens) {
  std::string vocab, merges;
  try {
    vocab = read_file(vocab_path);
    merges = read_file(merges_path);
  } catch (const IOError& e) {
    throw IOError(detail::cat("from_gpt2_files: ", e.what()));
  }
  return from_gpt2_bytes(vocab, merges, special_tokens, vocab_path, merges_path);
}

BPETokenizer BPETokenizer::from_gpt2_bytes(std::string_view vocab_json, std::string_view merges_txt,
                                           const std::vector<std::string>& special_tokens,
                                           const std::string& vocab_name,
                                           const std::string& merges_name) {
  using detail::cat;
  using detail::json;
  const detail::Damaged bad_vocab{"from_gpt2_files", vocab_name};
  const detail::Damaged bad_merges{"from_gpt2_files", merges_name};

  // vocab.json: {"<byte-level token>": id}, the ids 0..n-1 each once.
  const json vocab = detail::parse_json(vocab_json, bad_vocab);
  if (!vocab.is_object()) bad_vocab("it is not a JSON object");
  const int64_t n = int64_t(vocab.size());
  if (n == 0) bad_vocab("it holds no tokens");
  std::vector<const std::string*> spelling(size_t(n), nullptr);  // id -> its key in vocab.json
  std::unordered_map<std::string_view, int64_t> id_of;
  for (const auto& [key, value] : vocab.items()) {
    const int64_t id =
        detail::integer_in(value, 0, n - 1, cat("the id of \"", key, "\""), bad_vocab);
    if (spelling[size_t(id)])
      bad_vocab(cat("\"", *spelling[size_t(id)], "\" and \"", key, "\" share the id ", id));
    spelling[size_t(id)] = &key;
    id_of.emplace(key, id);
  }

  // merges.txt: "left right" per line in rank order; "#version" lines and blank lines skipped.
  std::vector<std::pair<int64_t, int64_t>> merges;
  std::vector<bool> reachable(size_t(n), false);
  size_t line_no = 0;
  for (size_t pos = 0; pos < merges_txt.size();) {
    size_t end = merges_txt.find('\n', pos);
    if (end == std::string_view::npos) end = merges_txt.size();
    std::string_view line = merges_txt.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.starts_with("#version")) continue;
    const size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string_view::npos)
      bad_merges(cat("line ", line_no, " should be two tokens separated by one space, got \"",
                     line.substr(0, 60), "\""));
    const std::string_view left = line.substr(0, space), right = line.substr(space + 1);
    const std::string joined = cat(left, right);
    int64_t ids[3];
    const std::string_view parts[3] = {left, right, joined};
    for (int k = 0; k < 3; ++k) {
      auto it = id_of.find(parts[k]);
      if (it == id_of.end())
        bad_merges(cat("line ", line_no, " (\"", line.substr(0, 60), "\") ",
                       k < 2 ? "joins" : "makes", " \"", parts[k].substr(0, 60),
                       "\", which is not in ", vocab_name));
      ids[k] = it->second;
    }
    merges.emplace_back(ids[0], ids[1]);
    reachable[size_t(ids[2])] = true;
  }

  // Tokens: the bytes each key spells, or for a special token its name.
  std::map<std::string, int64_t> specials;
  for (const std::string& name : special_tokens) {
    auto it = id_of.find(name);
    if (it != id_of.end()) specials.emplace(name, it->second);
  }
  std::vector<std::string> tokens(static_cast<size_t>(n));
  for (int64_t id = 0; id < n; ++id) {
    const std::string& key = *spelling[size_t(id)];
    if (specials.count(key)) {
      tokens[size_t(id)] = key;
      continue;
    }
    std::optional<std::string> bytes = from_byte_level(key);
    if (!bytes)
      bad_vocab(cat("token ", id, " (\"", key.substr(0, 60),
                    "\") is not byte-level text, and not a special token"));
    if (bytes->size() > 1 && !reachable[size_t(id)])
      bad_merges(cat("no merge makes token ", id, " (\"", key.substr(0, 60), "\") of ", vocab_name,
                     ": is the file cut short? (", merges.size(), " merges)"));
    tokens[size_t(id)] = std::move(*bytes);
  }
  return BPETokenizer(std::move(tokens), merges, std::move(specials), [&](const std::string& what) {
    throw IOError(cat("from_gpt2_files: '", vocab_name, "' and '", merges_name,
                      "' do not fit together: ", what));
  });
}

void BPETokenizer::save_gpt2_files(const std::string& dir) const {
  using detail::cat;
  // Written by hand in id order (GPT-2's own order): a JSON object type would sort the keys or
  // search linearly on each insertion.
  std::unordered_set<std::string> keys;
  std::string vocab = "{";
  for (int64_t id = 0; id < vocab_size(); ++id) {
    std::string key = is_special(id) ? tokens_[size_t(id)] : to_byte_level(tokens_[size_t(id)]);
    ANVIL_CHECK(
        keys.insert(key).second, ValueError, "save_gpt2_files: special token \"", key,
        "\" is spelled like another token in vocab.json; GPT-2's files cannot tell them apart");
    vocab += cat(id ? ", " : "", nlohmann::json(key).dump(), ": ", id);
  }
  vocab += "}\n";
  std::string merges = "#version: 0.2\n";
  for (const auto& [left, right] : merges_)
    merges +=
        cat(to_byte_level(tokens_[size_t(left)]), " ", to_byte_level(tokens_[size_t(right)]), "\n");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    throw IOError(cat("save_gpt2_files: cannot create the directory '", dir, "': ", ec.message()));
  const std::filesystem::path d(dir);
  write_file_atomic((d / "vocab.json").string(), vocab);
  write_file_atomic((d / "merges.txt").string(), merges);
}

}  // namespace anvil::text
