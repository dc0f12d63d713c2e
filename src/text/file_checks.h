// What the tokenizer readers share: JSON parsing with a depth limit, typed field access, and the
// IOError every damage becomes.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "anvil/core/error.h"

namespace anvil::text::detail {

using json = nlohmann::json;
using anvil::detail::cat;

// Says what is wrong with file `name` as IOError("<op>: '<name>' is damaged: <what>").
struct Damaged {
  std::string op, name;
  [[noreturn]] void operator()(const std::string& what) const {
    throw IOError(cat(op, ": '", name, "' is damaged: ", what));
  }
};

// A JSON value for a message, cut short: a damaged file may hold megabytes.
std::string brief(const json& j);

// `bytes` parsed as JSON. Documents nesting deeper than 16 levels are refused while parsing
// (copying or printing one recurses per level; a tokenizer file nests 3).
json parse_json(std::string_view bytes, const Damaged& damaged);

// document[key], which must be present and of this type ("string", "object", ...).
const json& field(const json& document, const char* key, json::value_t type, const char* type_name,
                  const Damaged& damaged);

// An integer JSON value in [lo, hi] (a float, even 3.0, is not one); `what` names it.
int64_t integer_in(const json& j, int64_t lo, int64_t hi, const std::string& what,
                   const Damaged& damaged);

// The special tokens of a document: {"<name>": id} with integer ids in [0, vocab_size).
std::map<std::string, int64_t> special_tokens_of(const json& document, int64_t vocab_size,
                                                 const Damaged& damaged);

// Empty when every name is a valid special-token name (non-empty UTF-8), else what is wrong.
std::string check_special_name(const std::string& name);

}  // namespace anvil::text::detail
