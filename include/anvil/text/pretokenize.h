// GPT-2's pre-tokeniser: how text is cut into the pieces that byte-pair encoding works within.
// GPT-2 splits with the regular expression
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (tried in that order at each position); gpt2_pretokenize is that expression written out by
// hand over UTF-8, giving the same pieces as the `regex` module and Hugging Face's tokenizers.
//
// Character classes. \p{L} is a code point of general category L* (Lu Ll Lt Lm Lo) and \p{N} of
// N* (Nd Nl No), from a table of ranges generated from Unicode 14.0 (scripts/gen_unicode_ranges.py;
// exact, not locale-dependent as std::iswalpha is). \s is Unicode's White_Space property:
// U+0009-000D, U+0020, U+0085, U+00A0, U+1680, U+2000-200A, U+2028, U+2029, U+202F, U+205F and
// U+3000, as \s means to Oniguruma and the `regex` module. A byte that does not begin a well-formed
// UTF-8 sequence (a stray continuation byte, a truncated or overlong sequence, a surrogate, a
// value past U+10FFFF) is one character of its own, neither letter, number nor space.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

namespace anvil::text {

enum class CharClass { Letter, Number, Space, Other };

// The class of a Unicode code point (values past U+10FFFF are Other).
CharClass char_class(char32_t code_point);

// The character starting at text[pos] (pos < text.size()): its class and its length in bytes
// (1 for a byte that does not begin well-formed UTF-8).
CharClass char_class_at(std::string_view text, size_t pos, size_t& length);

// The pieces of `text`, in order; they are views into `text` and concatenate to it exactly.
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

}  // namespace anvil::text
