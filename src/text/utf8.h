// UTF-8 decoding shared by the pre-tokeniser and the file readers.
#pragma once
#include <cstdint>
#include <string_view>

namespace anvil::text::detail {

// The code point of the well-formed UTF-8 sequence at s[pos] (pos < s.size()) and its length in
// bytes, or 0 when the bytes there are not one: a stray continuation byte, 0xF8..0xFF, a
// truncated sequence, an overlong form, a surrogate or a value past U+10FFFF.
inline size_t decode_utf8(std::string_view s, size_t pos, char32_t& c) {
  const auto b = [&](size_t k) { return uint8_t(s[pos + k]); };
  const uint8_t b0 = b(0);
  if (b0 < 0x80) {
    c = b0;
    return 1;
  }
  size_t len;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0)
    len = 2, c = b0 & 0x1F, min = 0x80;
  else if ((b0 & 0xF0) == 0xE0)
    len = 3, c = b0 & 0x0F, min = 0x800;
  else if ((b0 & 0xF8) == 0xF0)
    len = 4, c = b0 & 0x07, min = 0x10000;
  else
    return 0;
  if (pos + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    c = (c << 6) | (b(k) & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  return len;
}

inline bool is_utf8(std::string_view s) {
  char32_t c;
  for (size_t i = 0; i < s.size();) {
    const size_t len = decode_utf8(s, i, c);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

}  // namespace anvil::text::detail
