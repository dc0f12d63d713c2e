// Language-model data: TokenWindows (windows, shifted targets, strides), the train/validation
// split of a text, token files, and batches through the DataLoader into cross_entropy.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "anvil/data/data.h"
#include "anvil/text/text.h"
#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;
using namespace anvil::text;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path =
      fs::temp_directory_path() / ("anvil_test_text_dataset_" + std::to_string(getpid()));
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

using Ids = std::vector<int64_t>;

Ids ids(const Tensor& t) { return t.contiguous().to_vector<int64_t>(); }

}  // namespace

TEST(TokenWindows, WindowsAndShiftedTargets) {
  TokenWindows w(arange(10), 3);  // stride 3: windows at 0, 3, 6
  ASSERT_EQ(w.size(), 3);
  EXPECT_EQ(w.stride(), 3);
  EXPECT_EQ(ids(w.get(0).input), (Ids{0, 1, 2}));
  EXPECT_EQ(ids(w.get(0).target), (Ids{1, 2, 3}));
  EXPECT_EQ(ids(w.get(2).input), (Ids{6, 7, 8}));
  EXPECT_EQ(ids(w.get(2).target), (Ids{7, 8, 9}));
  EXPECT_EQ(w.get(1).input.shape(), (Shape{3}));
  EXPECT_EQ(w.get(1).input.dtype(), kInt64);
  EXPECT_TRUE(test::throws_with<IndexError>([&] { w.get(3); },
                                            {"TokenWindows::get", "index 3", "3 windows"}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { w.get(-1); }, {"index -1"}));
}

TEST(TokenWindows, Strides) {
  // (N - 1 - T) / stride + 1 windows.
  EXPECT_EQ(TokenWindows(arange(10), 3, 1).size(), 7);
  EXPECT_EQ(TokenWindows(arange(10), 3, 2).size(), 4);
  EXPECT_EQ(TokenWindows(arange(10), 3, 7).size(), 1);
  EXPECT_EQ(TokenWindows(arange(4), 3).size(), 1);  // N = T + 1: one window
  EXPECT_EQ(TokenWindows(arange(3), 3).size(), 0);  // no room for the shifted target
  TokenWindows every(arange(10), 3, 1);
  for (int64_t i = 0; i < every.size(); ++i) {
    EXPECT_EQ(ids(every.get(i).input), (Ids{i, i + 1, i + 2}));
    EXPECT_EQ(ids(every.get(i).target), (Ids{i + 1, i + 2, i + 3}));
  }
  TokenWindows two(arange(10), 3, 2);
  EXPECT_EQ(ids(two.get(3).input), (Ids{6, 7, 8}));
  EXPECT_EQ(ids(two.get(3).target), (Ids{7, 8, 9}));
}

TEST(TokenWindows, GetBatchStacksWindows) {
  TokenWindows w(mul(arange(100), 3), 8, 5);
  const std::vector<int64_t> idx = {4, 0, 17, 4};
  data::Batch b = w.get_batch(idx);
  ASSERT_EQ(b.input.shape(), (Shape{4, 8}));
  ASSERT_EQ(b.target.shape(), (Shape{4, 8}));
  EXPECT_EQ(b.input.dtype(), kInt64);
  EXPECT_EQ(b.target.dtype(), kInt64);
  data::Batch stacked = w.data::Dataset::get_batch(idx);  // get() and stack, the default collate
  EXPECT_TRUE(test::all_close(b.input, stacked.input, 0, 0));
  EXPECT_TRUE(test::all_close(b.target, stacked.target, 0, 0));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        w.get_batch({0, 19});
      },
      {"get_batch", "index 19"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { w.get_batch({}); }, {"get_batch", "none"}));
}

TEST(TokenWindows, Arguments) {
  TokenWindows narrow(tensor(std::vector<int32_t>{5, 6, 7, 8}), 2);  // int32 ids become int64
  EXPECT_EQ(narrow.tokens().dtype(), kInt64);
  EXPECT_EQ(ids(narrow.get(0).target), (Ids{6, 7}));
  TokenWindows view(arange(20).slice(0, 0, 20, 2), 3);  // a strided view is copied
  EXPECT_EQ(ids(view.get(1).input), (Ids{6, 8, 10}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [] {
        TokenWindows(zeros({2, 5}, kInt64), 2);
      },
      {"TokenWindows", "1-D", "[2, 5]"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([] { TokenWindows(zeros({5}), 2); },
                                            {"TokenWindows", "integer", "float32"}));
  EXPECT_TRUE(
      test::throws_with<ValueError>([] { TokenWindows(arange(5), 0); }, {"block_size >= 1", "0"}));
  EXPECT_TRUE(
      test::throws_with<ValueError>([] { TokenWindows(arange(5), 2, -1); }, {"stride", "-1"}));
  // Ids checked against the vocabulary: a file's ids may be anything.
  EXPECT_NO_THROW(TokenWindows(arange(5), 2, 0, 5));
  EXPECT_TRUE(test::throws_with<IndexError>([] { TokenWindows(arange(5), 2, 0, 4); },
                                            {"token 4 is 4", "[0, 4)"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [] {
        TokenWindows(tensor(std::vector<int64_t>{1, -3, 2}), 1, 0, 10);
      },
      {"token 1 is -3"}));
}

TEST(TokenWindows, DataLoaderBatches) {
  auto w = std::make_shared<TokenWindows>(arange(1000), 16, 8);
  ASSERT_EQ(w->size(), (1000 - 1 - 16) / 8 + 1);
  data::DataLoader loader(w, {.batch_size = 32, .shuffle = true, .seed = 3});
  std::set<int64_t> starts;
  int64_t batches = 0;
  for (data::Batch& b : loader) {
    ++batches;
    ASSERT_EQ(b.input.dim(), 2);
    ASSERT_EQ(b.input.size(1), 16);
    ASSERT_EQ(b.target.shape(), b.input.shape());
    ASSERT_EQ(b.input.dtype(), kInt64);
    // The target is the input shifted by one token.
    EXPECT_TRUE(test::all_close(b.input.slice(1, 1, 16), b.target.slice(1, 0, 15), 0, 0));
    for (int64_t r = 0; r < b.input.size(0); ++r) {
      const int64_t s = b.input.select(0, r).select(0, 0).item<int64_t>();
      EXPECT_EQ(s % 8, 0);
      starts.insert(s);
    }
  }
  EXPECT_EQ(batches, loader.size());
  EXPECT_EQ(int64_t(starts.size()), w->size());  // every window once per pass
  data::DataLoader dropping(w, {.batch_size = 32, .drop_last = true});
  for (data::Batch& b : dropping) EXPECT_EQ(b.input.size(0), 32);
}

TEST(TokenWindows, BatchesMeetCrossEntropy) {
  // Logits [B, T, V] of a model meet the [B, T] targets flattened, or as [B, V, T]: the same
  // mean over every position.
  std::vector<int64_t> tokens(200);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int64_t(i * 7 % 11);
  auto w = std::make_shared<TokenWindows>(tensor(tokens), 7);
  data::Batch b = w->get_batch({0, 3, 5});
  const int64_t B = 3, T = 7, V = 11;
  Tensor logits = test::uniform({B, T, V}, 5, -2, 2, kFloat32);
  Tensor flat = cross_entropy(logits.reshape({B * T, V}), b.target.reshape({-1}));
  Tensor per_position = cross_entropy(logits.transpose(1, 2), b.target);
  EXPECT_TRUE(test::all_close(flat, per_position, 1e-6, 1e-6));
  EXPECT_TRUE(
      test::throws_with<ShapeError>([&] { cross_entropy(logits, b.target); }, {"cross_entropy"}));
}

TEST(TextSplit, SizesAndBoundary) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += char('a' + i % 26);
  ByteTokenizer tok;
  TextSplit split = token_windows(text, tok, {.block_size = 16, .val_fraction = 0.1});
  // 1000 tokens: the last ceil(100) for validation, 900 for training.
  ASSERT_NE(split.val, nullptr);
  EXPECT_EQ(split.train->tokens().numel(), 900);
  EXPECT_EQ(split.val->tokens().numel(), 100);
  EXPECT_EQ(split.train->size(), (900 - 1 - 16) / 16 + 1);
  EXPECT_EQ(split.val->size(), (100 - 1 - 16) / 16 + 1);
  EXPECT_EQ(ids(split.val->get(0).input)[0], int64_t(text[900]));
  EXPECT_EQ(ids(split.train->get(split.train->size() - 1).target).back(),
            int64_t(text[size_t((split.train->size() - 1) * 16 + 16)]));
  // A fraction that does not divide: ceil.
  TextSplit odd = token_windows(text, tok, {.block_size = 4, .stride = 1, .val_fraction = 0.0333});
  EXPECT_EQ(odd.val->tokens().numel(), 34);
  EXPECT_EQ(odd.train->tokens().numel(), 966);
  EXPECT_EQ(odd.train->size(), 966 - 4);
  // No validation.
  TextSplit all = token_windows(text, tok, {.block_size = 16, .val_fraction = 0});
  EXPECT_EQ(all.val, nullptr);
  EXPECT_EQ(all.train->tokens().numel(), 1000);
}

TEST(TextSplit, Errors) {
  ByteTokenizer tok;
  const std::string text(100, 'x');
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { token_windows(text, tok, {.block_size = 8, .val_fraction = 1}); },
      {"val_fraction", "[0, 1)"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { token_windows(text, tok, {.block_size = 8, .val_fraction = -0.1}); },
      {"val_fraction"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { token_windows(text, tok, {.block_size = 100, .val_fraction = 0}); },
      {"100 tokens", "for training", "window of 100"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { token_windows(text, tok, {.block_size = 8, .val_fraction = 0.05}); },
      {"leave 5 for validation", "window of 8"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { token_windows(text, tok, {.block_size = 0}); },
                                            {"block_size"}));
}

TEST(TextSplit, FromFileWithBpe) {
  std::string text;
  for (int i = 0; i < 300; ++i)
    text += "the quick brown fox jumps over the lazy dog " + std::to_string(i) + "\n";
  const std::string path = put("corpus.txt", text);
  EXPECT_EQ(load_text(path), text);
  BPETokenizer tok = BPETokenizer::train(text, 400);
  TextSplit split = token_windows_from_file(path, tok, {.block_size = 32, .val_fraction = 0.2});
  const Ids all = tok.encode(text);
  const Ids train = ids(split.train->tokens()), val = ids(split.val->tokens());
  Ids joined = train;
  joined.insert(joined.end(), val.begin(), val.end());
  EXPECT_EQ(joined, all);
  EXPECT_EQ(int64_t(val.size()), int64_t(std::ceil(0.2 * double(all.size()))));
  for (int64_t id : all) ASSERT_LT(id, tok.vocab_size());
  EXPECT_EQ(tok.decode(split.val->tokens()), text.substr(tok.decode(train).size()));
}

TEST(TextFiles, LoadText) {
  const std::string a = put("a.txt", "alpha"), b = put("b.txt", "beta");
  EXPECT_EQ(load_text(std::vector<std::string>{a, b}), "alphabeta");
  EXPECT_EQ(load_text(std::vector<std::string>{a, b}, "\n"), "alpha\nbeta");
  EXPECT_TRUE(test::throws_with<IOError>([] { load_text(tmp().file("none.txt")); },
                                         {"load_text", "none.txt"}));
}

TEST(TextFiles, TokenFilesAsNanoGpt) {
  const std::string path = tmp().file("train.bin");
  Tensor t = tensor(std::vector<int64_t>{0, 1, 255, 256, 50256, 65535});
  save_tokens(t, path);
  EXPECT_EQ(fs::file_size(path), 12u);
  EXPECT_EQ(ids(load_tokens(path)), ids(t));
  // numpy reads the same uint16 values (nanoGPT: np.memmap(path, dtype=np.uint16)).
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  auto theirs = oracle.run_code("import numpy as np\nout = [torch.from_numpy(np.fromfile('" + path +
                                "', dtype=np.uint16).astype(np.int64))]");
  EXPECT_EQ(ids(theirs[0]), ids(t));
  // numpy's writer, read here.
  const std::string np_path = tmp().file("np.bin");
  oracle.run_code("import numpy as np\nnp.array([7, 40000, 3], dtype=np.uint16).tofile('" +
                  np_path + "')\nout = [torch.zeros(1)]");
  EXPECT_EQ(ids(load_tokens(np_path)), (Ids{7, 40000, 3}));

  EXPECT_TRUE(test::throws_with<IOError>([&] { load_tokens(path, 50257); },
                                         {"load_tokens", path, "token 5 is 65535", "[0, 50257)"}));
  const std::string odd = put("odd.bin", std::string(5, '\1'));
  EXPECT_TRUE(
      test::throws_with<IOError>([&] { load_tokens(odd); }, {"load_tokens", odd, "5 bytes"}));
  EXPECT_TRUE(
      test::throws_with<IOError>([] { load_tokens(tmp().file("none.bin")); }, {"none.bin"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        save_tokens(tensor(std::vector<int64_t>{1, 70000}), path);
      },
      {"token 1 is 70000", "uint16"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { save_tokens(tensor(std::vector<int64_t>{-1}, {1}), path); }, {"token 0 is -1"}));
  EXPECT_EQ(ids(load_tokens(path)), ids(t));  // a refused write leaves the file as it was
  EXPECT_EQ(TokenWindows(load_tokens(path), 2, 0, 65536).size(), 2);
}
