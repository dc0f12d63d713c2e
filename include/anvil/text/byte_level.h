// GPT-2's byte-level alphabet (bytes_to_unicode in GPT-2's encoder.py): each of the 256 byte
// values stands for one printable Unicode character, so that any byte string can be written as
// text in vocab.json and merges.txt. The printable bytes '!'..'~', '¡'..'¬' and '®'..'ÿ' stand for
// themselves (as code points U+0021.., U+00A1.., U+00AE..); the other 68 bytes, in increasing
// order, for U+0100, U+0101, ...: a space is "Ġ" (U+0120), a newline "Ċ" (U+010A).
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace anvil::text {

// The byte-level spelling of `bytes`, as UTF-8: to_byte_level(" the") == "Ġthe".
std::string to_byte_level(std::string_view bytes);

// The bytes a byte-level string spells; nullopt when `text` holds a character outside the
// alphabet (or is not valid UTF-8).
std::optional<std::string> from_byte_level(std::string_view text);

}  // namespace anvil::text
