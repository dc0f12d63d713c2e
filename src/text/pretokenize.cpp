#include "anvil/text/pretokenize.h"

#include <algorithm>
#include <iterator>

#include "text/unicode_ranges.h"
#include "text/utf8.h"

namespace anvil::text {
namespace {

template <size_t N>
bool in_ranges(const detail::CodePointRange (&ranges)[N], char32_t c) {
  const auto* it =
      std::upper_bound(std::begin(ranges), std::end(ranges), uint32_t(c),
                       [](uint32_t v, const detail::CodePointRange& r) { return v < r.first; });
  return it != std::begin(ranges) && uint32_t(c) <= (it - 1)->last;
}

bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

}  // namespace

CharClass char_class(char32_t c) {
  if (c < 0x80) {  // ASCII, the common case, without a search
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return CharClass::Letter;
    if (c >= '0' && c <= '9') return CharClass::Number;
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return CharClass::Space;
    return CharClass::Other;
  }
  if (is_white_space(c)) return CharClass::Space;
  if (in_ranges(detail::kLetterRanges, c)) return CharClass::Letter;
  if (in_ranges(detail::kNumberRanges, c)) return CharClass::Number;
  return CharClass::Other;
}

CharClass char_class_at(std::string_view text, size_t pos, size_t& length) {
  char32_t c = 0;
  length = detail::decode_utf8(text, pos, c);
  if (length == 0) {
    length = 1;
    return CharClass::Other;
  }
  return char_class(c);
}

std::vector<std::string_view> gpt2_pretokenize(std::string_view s) {
  std::vector<std::string_view> pieces;
  const size_t n = s.size();
  // The end of the run of characters of class `c` starting at `pos`.
  auto run_end = [&](size_t pos, CharClass c) {
    size_t len = 0;
    while (pos < n && char_class_at(s, pos, len) == c) pos += len;
    return pos;
  };
  size_t i = 0;
  while (i < n) {
    // 's|'t|'re|'ve|'m|'ll|'d
    if (s[i] == '\'' && i + 1 < n) {
      const char c = s[i + 1];
      if (c == 's' || c == 't' || c == 'm' || c == 'd') {
        pieces.push_back(s.substr(i, 2));
        i += 2;
        continue;
      }
      if (i + 2 < n) {
        const std::string_view two = s.substr(i + 1, 2);
        if (two == "re" || two == "ve" || two == "ll") {
          pieces.push_back(s.substr(i, 3));
          i += 3;
          continue;
        }
      }
    }
    size_t len = 0;
    const CharClass first = char_class_at(s, i, len);
    // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional space, then a run of one class.
    size_t run_start = i;
    CharClass run = first;
    if (s[i] == ' ' && i + 1 < n) {
      size_t next_len = 0;
      const CharClass next = char_class_at(s, i + 1, next_len);
      if (next != CharClass::Space) run_start = i + 1, run = next;
    }
    if (run != CharClass::Space) {
      const size_t end = run_end(run_start, run);
      pieces.push_back(s.substr(i, end - i));
      i = end;
      continue;
    }
    // '\s+(?!\S)|\s+': a run of white space; when a non-space follows a run of several
    // characters, the last one is left to start the next piece (as " ?\p{L}+" and its kin).
    size_t end = i, last = i;
    while (end < n && char_class_at(s, end, len) == CharClass::Space) last = end, end += len;
    if (end < n && last > i) end = last;
    pieces.push_back(s.substr(i, end - i));
    i = end;
  }
  return pieces;
}

}  // namespace anvil::text
