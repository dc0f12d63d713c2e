#include "text/file_checks.h"

#include "text/utf8.h"

namespace anvil::text::detail {

std::string brief(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() <= 60 ? s : s.substr(0, 57) + "...";
}

json parse_json(std::string_view bytes, const Damaged& damaged) {
  constexpr int kMaxDepth = 16;
  try {
    return json::parse(bytes, [&](int depth, json::parse_event_t, json&) {
      if (depth > kMaxDepth) damaged(cat("it nests deeper than ", kMaxDepth, " levels"));
      return true;
    });
  } catch (const json::exception& e) {
    damaged(cat("it is not valid JSON (", e.what(), ")"));
  }
}

const json& field(const json& document, const char* key, json::value_t type, const char* type_name,
                  const Damaged& damaged) {
  auto it = document.find(key);
  if (it == document.end()) damaged(cat("it has no \"", key, "\""));
  if (it->type() != type &&
      !(type == json::value_t::number_integer && it->type() == json::value_t::number_unsigned))
    damaged(cat("\"", key, "\" should be ", type_name, ", got ", brief(*it)));
  return *it;
}

int64_t integer_in(const json& j, int64_t lo, int64_t hi, const std::string& what,
                   const Damaged& damaged) {
  int64_t v = 0;
  if (j.is_number_unsigned()) {
    const uint64_t u = j.get<uint64_t>();
    if (u > uint64_t(hi)) damaged(cat(what, " is ", u, ", outside [", lo, ", ", hi, "]"));
    v = int64_t(u);
  } else if (j.is_number_integer()) {
    v = j.get<int64_t>();
  } else {
    damaged(cat(what, " should be an integer, got ", brief(j)));
  }
  if (v < lo || v > hi) damaged(cat(what, " is ", v, ", outside [", lo, ", ", hi, "]"));
  return v;
}

std::map<std::string, int64_t> special_tokens_of(const json& document, int64_t vocab_size,
                                                 const Damaged& damaged) {
  std::map<std::string, int64_t> out;
  const json& specials =
      field(document, "special_tokens", json::value_t::object, "an object", damaged);
  for (const auto& [name, id] : specials.items())
    out[name] =
        integer_in(id, 0, vocab_size - 1, cat("the id of special token \"", name, "\""), damaged);
  return out;
}

std::string check_special_name(const std::string& name) {
  if (name.empty()) return "a special token's name is empty";
  if (!is_utf8(name)) return "a special token's name is not valid UTF-8";
  return "";
}

}  // namespace anvil::text::detail
