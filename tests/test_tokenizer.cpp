// Tokenizers: GPT-2's pre-tokeniser and byte-level alphabet, ByteTokenizer, BPETokenizer
// (training, encoding against Hugging Face's GPT2Tokenizer, files and damaged files).
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "anvil/core/file.h"
#include "anvil/text/text.h"
#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;
using namespace anvil::text;
namespace fs = std::filesystem;

namespace {

// A fresh directory for this process's files, removed at exit.
struct TempDir {
  fs::path path = fs::temp_directory_path() / ("anvil_test_tokenizer_" + std::to_string(getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};
const TempDir& tmp() {
  static TempDir d;
  return d;
}

std::string put(const std::string& name, const std::string& bytes) {
  const std::string p = tmp().file(name);
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  return p;
}

const std::string kFortunes = "/usr/share/games/fortunes";

// The fortune text files (not the .dat indexes or the .u8 links), in name order.
std::vector<std::string> fortune_files() {
  std::vector<std::string> files;
  if (!fs::is_directory(kFortunes)) return files;
  for (const auto& e : fs::directory_iterator(kFortunes)) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() && !e.is_symlink() && ext != ".dat" && ext != ".u8")
      files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

const std::string& fortunes() {
  static const std::string text = load_text(fortune_files());
  return text;
}

// The 4096-token tokenizer of the fortunes, trained once per process (and timed).
const BPETokenizer& fortune_tokenizer() {
  static const BPETokenizer tok = [] {
    const auto start = std::chrono::steady_clock::now();
    BPETokenizer t = BPETokenizer::train(fortunes(), 4096, {.special_tokens = {"<|endoftext|>"}});
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("[ info ] trained 4096 tokens on %zu bytes of fortunes in %.2f s\n",
                fortunes().size(), s);
    return t;
  }();
  return tok;
}

std::vector<std::string> pieces(std::string_view s) {
  std::vector<std::string> out;
  for (std::string_view p : gpt2_pretokenize(s)) out.emplace_back(p);
  return out;
}

using Strings = std::vector<std::string>;
using Ids = std::vector<int64_t>;

Tensor bytes_tensor(std::string_view s) {
  std::vector<uint8_t> b(s.begin(), s.end());
  return b.empty() ? empty({0}, kUInt8) : tensor(b);
}

// The ids Hugging Face's GPT2Tokenizer gives for each text, reading GPT-2 files from `dir`.
std::vector<Ids> hf_encode(const std::string& dir, const std::vector<std::string>& texts,
                           bool specials) {
  auto& oracle = test::TorchOracle::get();
  std::vector<Tensor> inputs;
  for (const auto& t : texts) inputs.push_back(bytes_tensor(t));
  std::string code =
      "import transformers\n"
      "tok = transformers.GPT2Tokenizer.from_pretrained('" +
      dir +
      "')\n"
      "out = []\n"
      "for x in [";
  for (size_t i = 0; i < texts.size(); ++i) code += std::string(1, char('a' + i)) + ",";
  code +=
      "]:\n"
      "  text = bytes(x.numpy().tolist()).decode('utf-8')\n"
      "  ids = tok.encode(text, split_special_tokens=" +
      std::string(specials ? "False" : "True") +
      ")\n"
      "  out.append(torch.tensor(ids, dtype=torch.int64) if ids else torch.zeros(0, "
      "dtype=torch.int64))\n";
  std::vector<Ids> out;
  for (const Tensor& t : oracle.run_code(code, inputs)) out.push_back(t.to_vector<int64_t>());
  return out;
}

}  // namespace

// ---- pre-tokeniser and alphabet ----

TEST(Pretokenize, SplitsAsGpt2sPattern) {
  EXPECT_EQ(pieces("Hello world"), (Strings{"Hello", " world"}));
  EXPECT_EQ(pieces("I'm they're we'll you've it's 'd'S"),
            (Strings{"I", "'m", " they", "'re", " we", "'ll", " you", "'ve", " it", "'s", " '", "d",
                     "'", "S"}));
  EXPECT_EQ(pieces("abc123 4567 x9"), (Strings{"abc", "123", " 4567", " x", "9"}));
  EXPECT_EQ(pieces("a!!? ...b"), (Strings{"a", "!!?", " ...", "b"}));
  // \s+(?!\S): a run of spaces leaves its last one to the word after it.
  EXPECT_EQ(pieces("a   b"), (Strings{"a", "  ", " b"}));
  EXPECT_EQ(pieces("a\n\nb"), (Strings{"a", "\n", "\n", "b"}));
  EXPECT_EQ(pieces("a \n b"), (Strings{"a", " \n", " b"}));
  EXPECT_EQ(pieces("end  "), (Strings{"end", "  "}));
  EXPECT_EQ(pieces(" "), (Strings{" "}));
  EXPECT_EQ(pieces(""), (Strings{}));
  // Letters and numbers beyond ASCII, and Unicode white space.
  EXPECT_EQ(pieces("naïve Ωμέγα 日本語 ٣٤"), (Strings{"naïve", " Ωμέγα", " 日本語", " ٣٤"}));
  EXPECT_EQ(pieces("a\u3000b"), (Strings{"a", "\u3000", "b"}));
  EXPECT_EQ(pieces("x²½"), (Strings{"x", "²½"}));                  // No: numbers
  EXPECT_EQ(pieces("!\u0085!"), (Strings{"!", "\u0085", "!"}));    // NEL is White_Space
  EXPECT_EQ(pieces("!\x1c!\u200b!"), (Strings{"!\x1c!\u200b!"}));  // these are not
  EXPECT_EQ(pieces("x\u0300y"),
            (Strings{"x", "\u0300", "y"}));  // a combining mark (Mn) is no letter
}

TEST(Pretokenize, InvalidUtf8IsOtherAndPiecesCoverTheText) {
  const std::string s = "ab\xff\xfe cd\xc3(\xe2\x82 \xed\xa0\x80z";
  EXPECT_EQ(pieces(s), (Strings{"ab", "\xff\xfe", " cd", "\xc3(\xe2\x82", " \xed\xa0\x80", "z"}));
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::string r(size_t(rng() % 200), '\0');
    for (char& c : r) c = char(rng() % 256);
    std::string joined;
    for (std::string_view p : gpt2_pretokenize(r)) {
      EXPECT_FALSE(p.empty());
      joined += p;
    }
    EXPECT_EQ(joined, r);
  }
}

TEST(Pretokenize, CharClasses) {
  EXPECT_EQ(char_class(U'a'), CharClass::Letter);
  EXPECT_EQ(char_class(U'Z'), CharClass::Letter);
  EXPECT_EQ(char_class(U'é'), CharClass::Letter);
  EXPECT_EQ(char_class(U'ß'), CharClass::Letter);
  EXPECT_EQ(char_class(U'漢'), CharClass::Letter);
  EXPECT_EQ(char_class(U'7'), CharClass::Number);
  EXPECT_EQ(char_class(U'٣'), CharClass::Number);  // Arabic-Indic digit (Nd)
  EXPECT_EQ(char_class(U'Ⅻ'), CharClass::Number);  // Roman numeral (Nl)
  EXPECT_EQ(char_class(U'\t'), CharClass::Space);
  EXPECT_EQ(char_class(U'\u00a0'), CharClass::Space);
  EXPECT_EQ(char_class(U'\u2029'), CharClass::Space);
  EXPECT_EQ(char_class(U'\x1c'), CharClass::Other);  // not White_Space, unlike str.isspace
  EXPECT_EQ(char_class(U'_'), CharClass::Other);
  EXPECT_EQ(char_class(U'😀'), CharClass::Other);
  EXPECT_EQ(char_class(char32_t(0x110000)), CharClass::Other);
}

TEST(ByteLevel, Gpt2sAlphabet) {
  EXPECT_EQ(to_byte_level(" the"), "Ġthe");
  EXPECT_EQ(to_byte_level("\n"), "Ċ");
  EXPECT_EQ(to_byte_level(std::string(1, '\0')), "Ā");
  EXPECT_EQ(to_byte_level("\xad"), "Ń");  // the soft hyphen is not printable: the last remapped
  std::string all;
  for (int b = 0; b < 256; ++b) all += char(b);
  EXPECT_EQ(from_byte_level(to_byte_level(all)), all);
  EXPECT_EQ(from_byte_level("€"), std::nullopt);         // outside the alphabet
  EXPECT_EQ(from_byte_level("\xc0\xa1"), std::nullopt);  // an overlong '!'
  EXPECT_EQ(from_byte_level("\xc4"), std::nullopt);      // truncated
}

// ---- ByteTokenizer ----

TEST(ByteTokenizer, RoundTripsAnyBytes) {
  ByteTokenizer tok({"<|endoftext|>", "<|pad|>"});
  EXPECT_EQ(tok.vocab_size(), 258);
  EXPECT_EQ(tok.special_token("<|endoftext|>"), 256);
  EXPECT_EQ(tok.special_token("<|pad|>"), 257);
  std::mt19937 rng(3);
  std::string bytes(4096, '\0');
  for (char& c : bytes) c = char(rng() % 256);
  bytes += "\xc3\x28\xa0\xa1\xf0\x28\x8c\xbc";  // invalid UTF-8 too
  const Ids ids = tok.encode(bytes);
  ASSERT_EQ(ids.size(), bytes.size());
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], uint8_t(bytes[i]));
  EXPECT_EQ(tok.decode(ids), bytes);
  EXPECT_EQ(tok.encode("hi"), (Ids{104, 105}));
}

TEST(ByteTokenizer, SpecialTokens) {
  ByteTokenizer tok({"<|endoftext|>"});
  EXPECT_EQ(tok.encode("a<|endoftext|>").size(), 14u);  // plain text: no special id
  EXPECT_EQ(tok.encode_with_special_tokens("a<|endoftext|>b<|endoftext|>"),
            (Ids{97, 256, 98, 256}));
  EXPECT_EQ(tok.decode(Ids{97, 256, 98}), "a<|endoftext|>b");
  EXPECT_TRUE(tok.is_special(256));
  EXPECT_FALSE(tok.is_special(97));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { tok.special_token("<|pad|>"); },
                                            {"no special token '<|pad|>'", "<|endoftext|>"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        tok.decode(Ids{1, 257});
      },
      {"id 257", "position 1", "257 tokens"}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { tok.decode(Ids{-1}); }, {"id -1"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { ByteTokenizer({"a", "a"}); }, {"named twice"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { ByteTokenizer({""}); }, {"empty"}));
  // Of several names at one position, the longest.
  ByteTokenizer nested({"<a>", "<a><b>"});
  EXPECT_EQ(nested.encode_with_special_tokens("x<a><b><a>"), (Ids{'x', 257, 256}));
}

TEST(ByteTokenizer, DecodeTensor) {
  ByteTokenizer tok;
  EXPECT_EQ(tok.decode(tensor(std::vector<int32_t>{104, 105})), "hi");
  EXPECT_EQ(tok.decode(tensor(std::vector<int64_t>{104, 105, 106}).slice(0, 0, 3, 2)), "hj");
  EXPECT_TRUE(
      test::throws_with<DTypeError>([&] { tok.decode(zeros({2})); }, {"decode", "float32"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { tok.decode(zeros({2, 2}, kInt64)); }, {"1-D"}));
}

TEST(ByteTokenizer, FileRoundTrip) {
  ByteTokenizer tok({"<|endoftext|>", "<|pad|>"});
  const std::string path = tmp().file("byte.json");
  tok.save(path);
  auto back = load_tokenizer(path);
  ASSERT_EQ(back->type(), "byte");
  ASSERT_NE(dynamic_cast<ByteTokenizer*>(back.get()), nullptr);
  EXPECT_EQ(back->special_tokens(), tok.special_tokens());
  EXPECT_EQ(back->to_json(), tok.to_json());
}

// ---- BPE training ----

TEST(BPETrain, HandCountedMerges) {
  // One piece, "aaabdaaabac". Pairs: aa 4 (overlapping, twice in each "aaab"), ab 2, bd 1,
  // da 1, ba 1, ac 1: merge (a, a). Then "aa a b d aa a b a c": (aa, a) 2 and (a, b) 2 tie;
  // ("a", "b") sorts before ("aa", "a"): merge (a, b). Then "aa ab d aa ab a c": (aa, ab) 2.
  // Then every pair occurs once: below min_frequency 2, training stops at 259 tokens.
  BPETokenizer tok = BPETokenizer::train("aaabdaaabac", 1000);
  EXPECT_EQ(tok.vocab_size(), 259);
  EXPECT_EQ(tok.merges(),
            (std::vector<std::pair<int64_t, int64_t>>{{'a', 'a'}, {'a', 'b'}, {256, 257}}));
  EXPECT_EQ(tok.token(256), "aa");
  EXPECT_EQ(tok.token(257), "ab");
  EXPECT_EQ(tok.token(258), "aaab");
  EXPECT_EQ(tok.encode("aaabdaaabac"), (Ids{258, 'd', 258, 'a', 'c'}));
  EXPECT_EQ(tok.encode("aaaa"), (Ids{256, 256}));
  // With min_frequency 1 training goes on: of the pairs of count 1, (aaab, d), (d, aaab),
  // (aaab, a) and (a, c), the last sorts first by its bytes ("a" before "aaab"); then of
  // (aaab, d), (d, aaab) and (aaab, ac), the last ("ac" before "d").
  BPETokenizer more = BPETokenizer::train("aaabdaaabac", 261, {.min_frequency = 1});
  EXPECT_EQ(more.token(259), "ac");
  EXPECT_EQ(more.token(260), "aaabac");
}

TEST(BPETrain, CountsPiecesByFrequencyAndStopsAtVocabSize) {
  // Pieces "ab" once, " ab" twice, " b" twice: (a, b) 3, (' ', a) 2, (' ', b) 2. Then
  // " ab" -> (' ', ab) 2 ties (' ', b) 2; ab sorts before b.
  BPETokenizer tok = BPETokenizer::train("ab ab ab b b", 258 + 1, {.special_tokens = {"<|eot|>"}});
  ASSERT_EQ(tok.vocab_size(), 259);
  EXPECT_EQ(tok.token(256), "ab");
  EXPECT_EQ(tok.token(257), " ab");
  EXPECT_EQ(tok.token(258), "<|eot|>");
  EXPECT_EQ(tok.special_token("<|eot|>"), 258);
  EXPECT_EQ(tok.encode(" ab b"), (Ids{257, ' ', 'b'}));
  EXPECT_EQ(tok.encode_with_special_tokens("ab<|eot|>"), (Ids{256, 258}));
}

TEST(BPETrain, BadArguments) {
  EXPECT_TRUE(test::throws_with<ValueError>([] { BPETokenizer::train("abc", 255); },
                                            {"vocab_size", "[256,", "255"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { BPETokenizer::train("abc", 256, {.special_tokens = {"<s>"}}); }, {"[257,"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { BPETokenizer::train("abc", 300, {.min_frequency = 0}); }, {"min_frequency"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] {
        BPETokenizer::train("abc", 300, {.special_tokens = {"<s>", "<s>"}});
      },
      {"twice"}));
}

TEST(BPETrain, FortunesRoundTripAndCompression) {
  const std::string& text = fortunes();
  ASSERT_GT(text.size(), 1000000u) << "the fortunes package is missing (scripts/install-deps.sh)";
  const BPETokenizer& tok = fortune_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 4096);
  EXPECT_EQ(tok.special_token("<|endoftext|>"), 4095);
  const Ids ids = tok.encode(text);
  EXPECT_EQ(tok.decode(ids), text);
  // 4096 tokens make these fortunes (ASCII art included) about 2.9 bytes a token; bytes alone
  // would be 1.
  EXPECT_GT(double(text.size()) / double(ids.size()), 2.5);
  for (int64_t id : ids) ASSERT_TRUE(id >= 0 && id < 4095);
  // Training is deterministic.
  BPETokenizer again = BPETokenizer::train(text.substr(0, 200000), 600);
  BPETokenizer twice = BPETokenizer::train(text.substr(0, 200000), 600);
  EXPECT_EQ(again.merges(), twice.merges());
}

TEST(BPETokenizer, EncodesFromSeveralThreads) {
  const BPETokenizer& tok = fortune_tokenizer();
  const std::string text = fortunes().substr(0, 300000);
  const Ids want = tok.encode(text);
  std::vector<Ids> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] { got[size_t(t)] = tok.encode(text.substr(size_t(t) * 1000)); });
  for (auto& th : threads) th.join();
  EXPECT_EQ(got[0], want);
  for (int t = 1; t < 4; ++t) EXPECT_EQ(tok.decode(got[size_t(t)]), text.substr(size_t(t) * 1000));
}

// ---- agreement with Hugging Face ----

TEST(BPETokenizer, EncodesAsHuggingFaceGpt2Tokenizer) {
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  const BPETokenizer& tok = fortune_tokenizer();
  const std::string dir = tmp().file("fortunes-gpt2");
  tok.save_gpt2_files(dir);
  const std::vector<std::string> texts = {
      "Hello world! It's a test, isn't it? They'll say we've done what I'd've done.",
      "Numbers: 3.14159, 2024-12-31, 1,000,000 and 42nd; x86_64 v2.0.1",
      "Spaces:  two,   three,\ttab,\n\nnewlines  \n  and trailing   ",
      "Unicode: naïve café, Ωμέγα, Москва, 日本語のテキスト, emoji 😀👍🏽, ٣٤٥ and ²½ "
      "Ⅻ",
      "Mixed 'quotes' \"double\" ''' 's 'S 'LL CAN'T don't\u00a0nbsp\u3000ideographic\u2028sep",
      "\x1c\x1d control \x7f and \u0085 next-line",
      "",
      fortunes().substr(100000, 60000),
      fortunes().substr(fortunes().size() - 30000),
  };
  const std::vector<Ids> want = hf_encode(dir, texts, false);
  ASSERT_EQ(want.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const Ids got = tok.encode(texts[i]);
    EXPECT_EQ(got, want[i]) << "text " << i << ": \"" << texts[i].substr(0, 80) << "\"";
    EXPECT_EQ(tok.decode(got), texts[i]);
  }
}

TEST(BPETokenizer, SpecialTokensAsHuggingFace) {
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  const BPETokenizer& tok = fortune_tokenizer();
  const std::string dir = tmp().file("fortunes-gpt2-special");
  tok.save_gpt2_files(dir);
  const std::vector<std::string> texts = {"First.<|endoftext|>Second one<|endoftext|>",
                                          "<|endoftext|> leading and <|endoftext|><|endoftext|>"};
  const std::vector<Ids> want = hf_encode(dir, texts, true);
  for (size_t i = 0; i < texts.size(); ++i) {
    const Ids got = tok.encode_with_special_tokens(texts[i]);
    EXPECT_EQ(got, want[i]) << texts[i];
    EXPECT_EQ(std::count(got.begin(), got.end(), 4095), i == 0 ? 2 : 3);
    EXPECT_EQ(tok.decode(got), texts[i]);
  }
  // As plain text the name is ordinary bytes.
  const Ids plain = tok.encode(texts[0]);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 4095), 0);
  EXPECT_EQ(tok.decode(plain), texts[0]);
}

// ---- files ----

TEST(BPETokenizer, AnvilFileRoundTrip) {
  const BPETokenizer& tok = fortune_tokenizer();
  const std::string path = tmp().file("fortunes.json");
  tok.save(path);
  auto loaded = load_tokenizer(path);
  auto* back = dynamic_cast<BPETokenizer*>(loaded.get());
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->vocab_size(), tok.vocab_size());
  EXPECT_EQ(back->merges(), tok.merges());
  EXPECT_EQ(back->special_tokens(), tok.special_tokens());
  for (int64_t id = 0; id < tok.vocab_size(); ++id) ASSERT_EQ(back->token(id), tok.token(id));
  const std::string text = fortunes().substr(0, 50000);
  EXPECT_EQ(back->encode(text), tok.encode(text));
  EXPECT_EQ(back->to_json(), tok.to_json());
}

TEST(BPETokenizer, Gpt2FilesRoundTrip) {
  const BPETokenizer& tok = fortune_tokenizer();
  const std::string dir = tmp().file("gpt2-round-trip");
  tok.save_gpt2_files(dir);
  std::string merges = read_file(dir + "/merges.txt");
  EXPECT_TRUE(merges.starts_with("#version: 0.2\n"));
  EXPECT_EQ(std::count(merges.begin(), merges.end(), '\n'), int64_t(tok.merges().size()) + 1);
  BPETokenizer back = BPETokenizer::from_gpt2_files(dir + "/vocab.json", dir + "/merges.txt");
  EXPECT_EQ(back.merges(), tok.merges());
  EXPECT_EQ(back.special_tokens(), tok.special_tokens());  // "<|endoftext|>" is no merge's result
  auto any = load_tokenizer(dir);                          // a directory: GPT-2's files
  EXPECT_EQ(any->type(), "bpe");
  const std::string text = fortunes().substr(500000, 40000);
  EXPECT_EQ(any->encode(text), tok.encode(text));
}

TEST(BPETokenizer, FromParts) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, char(b));
  tokens.push_back("th");
  tokens.push_back("the");
  tokens.push_back("<eot>");
  BPETokenizer tok(tokens, {{'t', 'h'}, {256, 'e'}}, {{"<eot>", 258}});
  EXPECT_EQ(tok.encode("the then"), (Ids{257, ' ', 257, 'n'}));
  EXPECT_EQ(tok.token_id("the"), 257);
  EXPECT_EQ(tok.token_id("<eot>"), std::nullopt);  // special tokens are not text
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        BPETokenizer(tokens, {{'t', 'h'}, {256, 'e'}, {'t', 'h'}}, {{"<eot>", 258}});
      },
      {"BPETokenizer", "merge 2 repeats merge 0"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        BPETokenizer(tokens, {{'t', 'h'}, {256, 'e'}});
      },
      {"token 258", "neither"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        BPETokenizer(tokens, {{'t', 'h'}, {256, 'x'}}, {{"<eot>", 258}});
      },
      {"merge 1", "thx", "not a token"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        BPETokenizer(tokens, {{'t', 'h'}, {256, 'e'}}, {{"<eot>", 257}});
      },
      {"special token \"<eot>\""}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { BPETokenizer(std::vector<std::string>(tokens.begin() + 1, tokens.end()), {}); },
      {"no token holds the byte 0"}));
}

// ---- damaged files ----

namespace {

// A small tokenizer's anvil document, to damage.
nlohmann::json small_document() {
  return BPETokenizer::train("the cat the hat the bat", 300, {.special_tokens = {"<|eot|>"}})
      .to_json();
}

// load_tokenizer on `bytes` must throw IOError naming the file and `what`.
::testing::AssertionResult refused(const std::string& name, const std::string& bytes,
                                   const std::vector<std::string>& what) {
  const std::string path = put(name, bytes);
  std::vector<std::string> needles = {"load_tokenizer", path};
  needles.insert(needles.end(), what.begin(), what.end());
  return test::throws_with<IOError>([&] { load_tokenizer(path); }, needles);
}

}  // namespace

TEST(TokenizerFile, DamagedAnvilDocumentsThrowIOError) {
  const nlohmann::json good = small_document();
  const std::string text = good.dump();
  EXPECT_TRUE(refused("truncated.json", text.substr(0, text.size() / 2), {"not valid JSON"}));
  EXPECT_TRUE(refused("empty.json", "", {"not valid JSON"}));
  EXPECT_TRUE(refused("array.json", "[1, 2]", {"not a JSON object"}));
  EXPECT_TRUE(refused("deep.json", std::string(1000, '[') + std::string(1000, ']'), {"deeper"}));
  auto damaged = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = good;
    edit(j);
    return j.dump();
  };
  EXPECT_TRUE(
      refused("format.json", damaged([](auto& j) { j["format"] = "other"; }), {"\"format\""}));
  EXPECT_TRUE(
      refused("version.json", damaged([](auto& j) { j["format_version"] = 2; }), {"newer"}));
  EXPECT_TRUE(refused("version-type.json", damaged([](auto& j) { j["format_version"] = "1"; }),
                      {"format_version", "integer"}));
  EXPECT_TRUE(
      refused("type.json", damaged([](auto& j) { j["type"] = "wordpiece"; }), {"wordpiece"}));
  EXPECT_TRUE(
      refused("no-vocab.json", damaged([](auto& j) { j.erase("vocab"); }), {"no \"vocab\""}));
  EXPECT_TRUE(refused("vocab-type.json", damaged([](auto& j) { j["vocab"] = "abc"; }),
                      {"\"vocab\" should be an array"}));
  EXPECT_TRUE(refused("vocab-entry.json", damaged([](auto& j) { j["vocab"][3] = 3; }),
                      {"vocab entry 3 should be a string"}));
  EXPECT_TRUE(refused("not-byte-level.json", damaged([](auto& j) { j["vocab"][257] = "€"; }),
                      {"vocab entry 257", "not byte-level"}));
  EXPECT_TRUE(refused("duplicate.json", damaged([](auto& j) { j["vocab"][257] = j["vocab"][256]; }),
                      {"tokens 256 and 257"}));
  EXPECT_TRUE(refused("truncated-vocab.json", damaged([](auto& j) { j["vocab"].erase(100); }),
                      {"load_tokenizer"}));
  EXPECT_TRUE(refused("merge-range.json", damaged([](auto& j) { j["merges"][0][1] = 100000; }),
                      {"merge 0", "100000", "outside"}));
  EXPECT_TRUE(refused("merge-negative.json", damaged([](auto& j) { j["merges"][0][0] = -1; }),
                      {"merge 0", "-1"}));
  EXPECT_TRUE(refused("merge-float.json", damaged([](auto& j) { j["merges"][0][0] = 1.5; }),
                      {"merge 0", "integer"}));
  EXPECT_TRUE(refused("merge-shape.json", damaged([](auto& j) {
                        j["merges"][1] = {1, 2, 3};
                      }),
                      {"merge 1", "pair"}));
  EXPECT_TRUE(refused("merge-unknown.json", damaged([](auto& j) {
                        j["merges"][0] = {'x', 'q'};
                      }),
                      {"merge 0", "not a token"}));
  EXPECT_TRUE(refused("no-merges.json",
                      damaged([](auto& j) { j["merges"] = nlohmann::json::array(); }),
                      {"neither a byte"}));
  EXPECT_TRUE(refused("special-range.json",
                      damaged([](auto& j) { j["special_tokens"]["<|eot|>"] = 5000; }),
                      {"special token \"<|eot|>\"", "5000"}));
  EXPECT_TRUE(refused("special-name.json", damaged([](auto& j) {
                        j["special_tokens"] = {{"<|x|>", 299}};
                      }),
                      {"special token \"<|x|>\""}));
  EXPECT_TRUE(refused("special-type.json", damaged([](auto& j) {
                        j["special_tokens"] = {1, 2};
                      }),
                      {"\"special_tokens\" should be an object"}));
  EXPECT_TRUE(refused("byte-special.json",
                      R"({"format": "anvil-tokenizer", "format_version": 1, "type": "byte",
                          "special_tokens": {"<s>": 12}})",
                      {"<s>", "byte 12"}));
  EXPECT_TRUE(refused("byte-gap.json",
                      R"({"format": "anvil-tokenizer", "format_version": 1, "type": "byte",
                          "special_tokens": {"<s>": 257}})",
                      {"outside [0, 256]"}));
  EXPECT_TRUE(test::throws_with<IOError>([] { load_tokenizer(tmp().file("missing.json")); },
                                         {"load_tokenizer", "missing.json"}));
  // The undamaged document loads.
  EXPECT_EQ(load_tokenizer(put("good.json", text))->vocab_size(), int64_t(good["vocab"].size()));
}

TEST(TokenizerFile, DamagedGpt2FilesThrowIOError) {
  const BPETokenizer tok =
      BPETokenizer::train("the cat the hat the bat", 300, {.special_tokens = {"<|endoftext|>"}});
  const std::string dir = tmp().file("small-gpt2");
  tok.save_gpt2_files(dir);
  const std::string vocab = read_file(dir + "/vocab.json"), merges = read_file(dir + "/merges.txt");
  auto refused_pair = [&](const std::string& v, const std::string& m,
                          const std::vector<std::string>& what) {
    const std::string vp = put("v.json", v), mp = put("m.txt", m);
    std::vector<std::string> needles = {"from_gpt2_files"};
    needles.insert(needles.end(), what.begin(), what.end());
    return test::throws_with<IOError>([&] { BPETokenizer::from_gpt2_files(vp, mp); }, needles);
  };
  EXPECT_TRUE(
      refused_pair(vocab.substr(0, vocab.size() - 10), merges, {"v.json", "not valid JSON"}));
  EXPECT_TRUE(refused_pair("[]", merges, {"v.json", "not a JSON object"}));
  EXPECT_TRUE(refused_pair("{}", merges, {"v.json", "no tokens"}));
  nlohmann::json v = nlohmann::json::parse(vocab);
  nlohmann::json bad = v;
  bad["Ġcat"] = "257";
  EXPECT_TRUE(refused_pair(bad.dump(), merges, {"v.json", "Ġcat", "integer"}));
  bad = v;
  bad["Ġcat"] = 100000;
  EXPECT_TRUE(refused_pair(bad.dump(), merges, {"v.json", "100000", "outside"}));
  bad = v;
  bad["Ġcat"] = 0;
  EXPECT_TRUE(refused_pair(bad.dump(), merges, {"v.json", "share the id 0"}));
  bad = v;
  bad.erase("z");
  bad["<|pad|>"] = v["z"];
  EXPECT_TRUE(test::throws_with<IOError>(
      [&] {
        BPETokenizer::from_gpt2_bytes(bad.dump(), merges, {"<|endoftext|>", "<|pad|>"});
      },
      {"from_gpt2_files", "do not fit together", "no token holds the byte 122"}));
  EXPECT_TRUE(refused_pair(vocab, merges + "Ġ z\n", {"m.txt", "line", "makes \"Ġz\"", "not in"}));
  EXPECT_TRUE(refused_pair(vocab, merges + "zz q\n", {"m.txt", "joins \"zz\"", "not in"}));
  EXPECT_TRUE(refused_pair(vocab, merges + "ab\n", {"m.txt", "two tokens"}));
  EXPECT_TRUE(refused_pair(vocab, merges + "a b c\n", {"m.txt", "two tokens"}));
  const size_t second = merges.find('\n', merges.find('\n') + 1) + 1;  // after the first merge
  EXPECT_TRUE(refused_pair(vocab, merges + merges.substr(14, second - 14), {"repeats merge 0"}));
  // A truncated merges.txt: the tokens the missing merges made are made by none.
  EXPECT_TRUE(
      refused_pair(vocab, merges.substr(0, second), {"m.txt", "no merge makes", "cut short"}));
  EXPECT_TRUE(refused_pair(vocab, merges.substr(0, merges.size() - 3), {"m.txt"}));
  // A vocab.json whose special token is not named as one.
  EXPECT_TRUE(test::throws_with<IOError>(
      [&] { BPETokenizer::from_gpt2_bytes(vocab, merges, {}, "v.json", "m.txt"); },
      {"m.txt", "no merge makes", "<|endoftext|>"}));
  EXPECT_TRUE(test::throws_with<IOError>(
      [&] { BPETokenizer::from_gpt2_files(dir + "/vocab.json", dir + "/none.txt"); },
      {"from_gpt2_files", "none.txt"}));
  // CRLF line ends and blank lines are fine; so are the undamaged files.
  std::string crlf;
  for (char c : merges) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  EXPECT_EQ(BPETokenizer::from_gpt2_bytes(vocab, crlf + "\n\n").merges(), tok.merges());
}
