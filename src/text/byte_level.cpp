#include "anvil/text/byte_level.h"

#include <array>

namespace anvil::text {
namespace {

// GPT-2's bytes_to_unicode: the code point each byte stands for.
struct Alphabet {
  std::array<char32_t, 256> code_of{};
  std::array<std::string, 256> utf8_of;  // code_of as UTF-8
  std::array<int16_t, 512> byte_of{};    // code point (all < 512) -> byte, or -1

  Alphabet() {
    byte_of.fill(-1);
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) code_of[size_t(b)] = printable(b) ? char32_t(b) : next++;
    for (int b = 0; b < 256; ++b) {
      const char32_t c = code_of[size_t(b)];
      byte_of[size_t(c)] = int16_t(b);
      std::string& u = utf8_of[size_t(b)];
      if (c < 0x80) {
        u = std::string(1, char(c));
      } else {  // all below U+0800: two bytes
        u = {char(0xC0 | (c >> 6)), char(0x80 | (c & 0x3F))};
      }
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

}  // namespace

std::string to_byte_level(std::string_view bytes) {
  const Alphabet& a = alphabet();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char b : bytes) out += a.utf8_of[uint8_t(b)];
  return out;
}

std::optional<std::string> from_byte_level(std::string_view text) {
  const Alphabet& a = alphabet();
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const uint8_t b0 = uint8_t(text[i]);
    char32_t c;
    if (b0 < 0x80) {
      c = b0;
      i += 1;
    } else if ((b0 & 0xE0) == 0xC0 && i + 1 < text.size() &&
               (uint8_t(text[i + 1]) & 0xC0) == 0x80) {
      c = char32_t(b0 & 0x1F) << 6 | (uint8_t(text[i + 1]) & 0x3F);
      i += 2;
      if (c < 0x80) return std::nullopt;  // overlong
    } else {
      return std::nullopt;  // not UTF-8, or a character past U+07FF: outside the alphabet
    }
    if (c >= a.byte_of.size() || a.byte_of[c] < 0) return std::nullopt;
    out += char(a.byte_of[c]);
  }
  return out;
}

}  // namespace anvil::text
