// Datasets: TensorDataset, Subset and the splits, IDX files, Fashion-MNIST, CSV.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "anvil/data/data.h"
#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;
using namespace anvil::data;
namespace fs = std::filesystem;

namespace {

const std::string kFashion = "/usr/share/datasets/fashion-mnist";
const std::string kSklearnData = "/usr/lib/python3/dist-packages/sklearn/datasets/data";

// A fresh directory for this process's files, removed at exit.
struct TempDir {
  fs::path path = fs::temp_directory_path() / ("anvil_test_data_" + std::to_string(getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};
const TempDir& tmp() {
  static TempDir d;
  return d;
}

using Bytes = std::vector<uint8_t>;
std::string write_bytes(const std::string& name, const Bytes& b) {
  const std::string p = tmp().file(name);
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  return p;
}
Bytes read_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
std::string write_text(const std::string& name, const std::string& text) {
  const std::string p = tmp().file(name);
  std::ofstream(p) << text;
  return p;
}

// An IDX header for uint8 data with the given dims, followed by `data`.
Bytes idx_u8(const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes b = {0, 0, 0x08, uint8_t(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(d >> s));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

Bytes iota_bytes(size_t n, uint8_t mul = 7) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t(i * mul + 3);
  return b;
}

// A dataset that knows only get(): exercises Dataset::get_batch's default.
class Squares : public Dataset {
 public:
  int64_t size() const override { return 6; }
  Example get(int64_t i) const override {
    return {tensor(std::vector<float>{float(i), float(i * i)}), scalar_tensor(i, kInt64)};
  }
};

}  // namespace

// ---------------------------------------------------------------- in-memory datasets

TEST(TensorDataset, GetAndBatch) {
  Tensor x = test::uniform({5, 3}, 1, -1, 1, kFloat32),
         y = tensor(std::vector<int64_t>{4, 3, 2, 1, 0});
  TensorDataset ds(x, y);
  EXPECT_EQ(ds.size(), 5);
  Example e = ds.get(2);
  EXPECT_TRUE(test::all_close(e.input, x.select(0, 2), 0, 0));
  EXPECT_EQ(e.target.item<int64_t>(), 2);
  Batch b = ds.get_batch({4, 0, 4});
  EXPECT_EQ(b.input.shape(), (Shape{3, 3}));
  EXPECT_TRUE(test::all_close(b.input.select(0, 0), x.select(0, 4), 0, 0));
  EXPECT_TRUE(test::all_close(b.input.select(0, 1), x.select(0, 0), 0, 0));
  EXPECT_EQ(b.target.to_vector<int64_t>(), (std::vector<int64_t>{0, 4, 0}));
}

TEST(TensorDataset, Errors) {
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [] {
        TensorDataset(zeros({4, 2}), zeros({3}));
      },
      {"TensorDataset", "4 inputs", "3 targets"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([] { TensorDataset(zeros({}), zeros({3})); },
                                            {"TensorDataset", "sample dim"}));
  TensorDataset ds(zeros({4, 2}), zeros({4}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { ds.get(4); },
                                            {"TensorDataset::get", "index 4", "4 samples"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        ds.get_batch({0, -1});
      },
      {"get_batch", "index -1"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { ds.get_batch({}); },
                                            {"get_batch", "at least one index"}));
}

TEST(Dataset, DefaultGetBatchStacks) {
  Squares ds;
  Batch b = ds.get_batch({3, 1, 5});
  EXPECT_EQ(b.input.shape(), (Shape{3, 2}));
  EXPECT_EQ(b.input.to_vector<float>(), (std::vector<float>{3, 9, 1, 1, 5, 25}));
  EXPECT_EQ(b.target.shape(), (Shape{3}));
  EXPECT_EQ(b.target.to_vector<int64_t>(), (std::vector<int64_t>{3, 1, 5}));
  EXPECT_TRUE(
      test::throws_with<ValueError>([&] { ds.get_batch({}); }, {"get_batch", "at least one"}));
}

TEST(Subset, MapsIndices) {
  auto base = std::make_shared<TensorDataset>(arange(10).to(kFloat32).reshape({10, 1}), arange(10));
  Subset s(base, {7, 2, 9});
  EXPECT_EQ(s.size(), 3);
  EXPECT_EQ(s.get(1).target.item<int64_t>(), 2);
  EXPECT_EQ(s.get_batch({2, 0}).target.to_vector<int64_t>(), (std::vector<int64_t>{9, 7}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        Subset(base, {3, 10});
      },
      {"Subset", "index 10", "10 samples"}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { s.get(3); }, {"Subset::get", "index 3"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        s.get_batch({0, 3});
      },
      {"Subset::get_batch", "index 3"}));
}

TEST(Sampler, ShuffledIndicesArePermutationsPerEpoch) {
  const auto a = shuffled_indices(100, 5, 0), b = shuffled_indices(100, 5, 1);
  EXPECT_EQ(a, shuffled_indices(100, 5, 0));  // reproducible
  EXPECT_NE(a, b);                            // epochs differ
  EXPECT_NE(a, shuffled_indices(100, 6, 0));  // seeds differ
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> want(100);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(sorted, want);
  EXPECT_TRUE(shuffled_indices(0, 1).empty());
  EXPECT_TRUE(
      test::throws_with<ValueError>([] { shuffled_indices(-1, 0); }, {"shuffled_indices", "-1"}));
  // Roughly uniform: over many seeds, element 0 lands in each of 4 positions about 1/4 of the time.
  std::vector<int> hits(4);
  for (uint64_t seed = 0; seed < 4000; ++seed) {
    const auto p = shuffled_indices(4, seed);
    ++hits[size_t(std::find(p.begin(), p.end(), 0) - p.begin())];
  }
  for (int h : hits) EXPECT_NEAR(h, 1000, 120);
}

TEST(Split, RandomSplitLengthsAndFractions) {
  auto base = std::make_shared<TensorDataset>(zeros({10, 1}), arange(10));
  auto parts = random_split(base, std::vector<int64_t>{3, 7}, 42);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0]->size(), 3);
  EXPECT_EQ(parts[1]->size(), 7);
  std::set<int64_t> all(parts[0]->indices().begin(), parts[0]->indices().end());
  all.insert(parts[1]->indices().begin(), parts[1]->indices().end());
  EXPECT_EQ(all.size(), 10u);  // disjoint and complete
  EXPECT_EQ(random_split(base, std::vector<int64_t>{3, 7}, 42)[0]->indices(), parts[0]->indices());
  EXPECT_NE(random_split(base, std::vector<int64_t>{3, 7}, 43)[0]->indices(), parts[0]->indices());
  // Fractions: floor(10 * f) = 3, 3, 3, remainder 1 to the first (as
  // torch.utils.data.random_split).
  auto thirds = random_split(base, std::vector<double>{1.0 / 3, 1.0 / 3, 1.0 / 3});
  EXPECT_EQ(thirds[0]->size(), 4);
  EXPECT_EQ(thirds[1]->size(), 3);
  EXPECT_EQ(thirds[2]->size(), 3);
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        random_split(base, std::vector<int64_t>{3, 6});
      },
      {"random_split", "add up to 9", "10 samples"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        random_split(base, std::vector<double>{0.5, 0.4});
      },
      {"random_split", "add up to 1", "0.9"}));
}

TEST(Split, RandomSplitFractionsMatchTorch) {
  // torch's own remainder rule, for a size where it matters.
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  auto base = std::make_shared<TensorDataset>(zeros({17, 1}), arange(17));
  auto parts = random_split(base, std::vector<double>{0.3, 0.3, 0.4});
  auto want = oracle.run_code(
      "from torch.utils.data import random_split\n"
      "out = [torch.tensor([len(s) for s in random_split(range(17), [0.3, 0.3, 0.4])])]");
  EXPECT_EQ(want[0].to_vector<int64_t>(),
            (std::vector<int64_t>{parts[0]->size(), parts[1]->size(), parts[2]->size()}));
}

TEST(Split, TrainTestSplitSizesMatchSklearn) {
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  const std::vector<std::pair<int64_t, double>> cases = {
      {10, 0.25}, {7, 0.3}, {506, 0.2}, {3, 0.5}};
  std::string code = "from sklearn.model_selection import train_test_split\nout = [torch.tensor([";
  for (auto [n, f] : cases)
    code += "[len(s) for s in train_test_split(list(range(" + std::to_string(n) +
            ")), test_size=" + std::to_string(f) + ")],";
  code += "])]";
  const auto want = oracle.run_code(code)[0].to_vector<int64_t>();
  for (size_t k = 0; k < cases.size(); ++k) {
    auto base =
        std::make_shared<TensorDataset>(zeros({cases[k].first, 1}), zeros({cases[k].first}));
    auto [train, test] = train_test_split(base, cases[k].second, 1);
    EXPECT_EQ(train->size(), want[2 * k]) << "n=" << cases[k].first;
    EXPECT_EQ(test->size(), want[2 * k + 1]) << "n=" << cases[k].first;
  }
  auto base = std::make_shared<TensorDataset>(zeros({4, 1}), zeros({4}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { train_test_split(base, 1.0); },
                                            {"train_test_split", "(0, 1)"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { train_test_split(base, 0.9); },
                                            {"train_test_split", "no training"}));
}

// ---------------------------------------------------------------- IDX

TEST(Idx, ReadsRawAndGzipRoundTrip) {
  const Bytes data = iota_bytes(2 * 3 * 4);
  Tensor raw = read_idx(write_bytes("a.idx", idx_u8({2, 3, 4}, data)));
  EXPECT_EQ(raw.dtype(), kUInt8);
  EXPECT_EQ(raw.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(raw.to_vector<uint8_t>(), data);
  // write_idx, raw and gzipped, for every dtype it writes; gzip is detected by magic, not name.
  const std::vector<Tensor> ts = {
      raw, tensor(std::vector<int32_t>{-5, 70000, 0, 2147483647}, {2, 2}),
      test::uniform({3, 2}, 3, -1e3, 1e3, kFloat32), test::uniform({5}, 4, -1, 1, kFloat64)};
  for (const Tensor& t : ts)
    for (bool gz : {false, true}) {
      const std::string p =
          tmp().file(std::string("w_") + dtype_name(t.dtype()) + (gz ? "_gz" : ""));
      write_idx(p, t, gz);
      EXPECT_EQ(read_bytes(p).at(0) == 0x1f, gz);
      Tensor back = read_idx(p);
      EXPECT_EQ(back.dtype(), t.dtype());
      EXPECT_TRUE(test::all_close(back, t, 0, 0)) << dtype_name(t.dtype()) << " gzip=" << gz;
      EXPECT_FALSE(fs::exists(p + ".tmp"));
    }
  // A 0-dim tensor and an empty one.
  write_idx(tmp().file("scalar"), scalar_tensor(3.5, kFloat64));
  EXPECT_EQ(read_idx(tmp().file("scalar")).item<double>(), 3.5);
  write_idx(tmp().file("empty"), zeros({0, 3}, kUInt8), true);
  EXPECT_EQ(read_idx(tmp().file("empty")).shape(), (Shape{0, 3}));
  EXPECT_TRUE(test::throws_with<DTypeError>([] { write_idx(tmp().file("x"), zeros({2}, kInt64)); },
                                            {"write_idx", "int64"}));
}

TEST(Idx, BigEndianTypesAgreeWithNumpy) {
  // int16 and signed byte files (written by numpy, big-endian) widen to int32.
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  const std::string p16 = tmp().file("i16.idx"), p8 = tmp().file("i8.idx");
  oracle.run_code(
      "import numpy as np, struct\n"
      "v = np.array([[-300, 2, 32767], [-32768, 0, 7]], dtype='>i2')\n"
      "open('" +
      p16 +
      "', 'wb').write(bytes([0, 0, 0x0b, 2]) + struct.pack('>II', 2, 3) + v.tobytes())\n"
      "w = np.array([-128, -1, 0, 127], dtype='i1')\n"
      "open('" +
      p8 +
      "', 'wb').write(bytes([0, 0, 0x09, 1]) + struct.pack('>I', 4) + w.tobytes())\n"
      "out = 0");
  Tensor a = read_idx(p16), b = read_idx(p8);
  EXPECT_EQ(a.dtype(), kInt32);
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_EQ(a.to_vector<int32_t>(), (std::vector<int32_t>{-300, 2, 32767, -32768, 0, 7}));
  EXPECT_EQ(b.to_vector<int32_t>(), (std::vector<int32_t>{-128, -1, 0, 127}));
}

TEST(Idx, Errors) {
  EXPECT_TRUE(test::throws_with<IOError>([] { read_idx(tmp().file("missing.idx")); },
                                         {"read_idx", "missing.idx", "cannot open"}));
  const std::string bad_magic = write_bytes("bad_magic", {'P', 'K', 3, 4, 0, 0, 0, 0});
  EXPECT_TRUE(test::throws_with<IOError>(
      [&] { read_idx(bad_magic); }, {"read_idx", "bad_magic", "not an IDX file", "50 4b 03 04"}));
  const std::string bad_type = write_bytes("bad_type", {0, 0, 0x07, 1, 0, 0, 0, 1, 5});
  EXPECT_TRUE(
      test::throws_with<IOError>([&] { read_idx(bad_type); }, {"bad_type", "type byte 0x07"}));
  const std::string tiny = write_bytes("tiny", {0, 0});
  EXPECT_TRUE(
      test::throws_with<IOError>([&] { read_idx(tiny); }, {"tiny", "not an IDX file", "2 bytes"}));
  const std::string short_header = write_bytes("short_header", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0});
  EXPECT_TRUE(test::throws_with<IOError>([&] { read_idx(short_header); },
                                         {"short_header", "truncated header", "3 dims"}));
  Bytes full = idx_u8({4, 5}, iota_bytes(20));
  const std::string truncated = write_bytes("truncated", Bytes(full.begin(), full.end() - 3));
  EXPECT_TRUE(test::throws_with<IOError>(
      [&] { read_idx(truncated); },
      {"truncated", "truncated data", "[4, 5]", "need 20 bytes", "holds 17"}));
  Bytes longer = full;
  longer.push_back(1);
  const std::string trailing = write_bytes("trailing", longer);
  EXPECT_TRUE(test::throws_with<IOError>([&] { read_idx(trailing); },
                                         {"trailing", "[4, 5]", "20 bytes", "holds 21"}));

  // gzip: cut short, and corrupted in the middle.
  const std::string gz = tmp().file("good.gz");
  write_idx(gz, read_idx(write_bytes("big", idx_u8({64, 64}, iota_bytes(4096, 13)))), true);
  const Bytes zipped = read_bytes(gz);
  ASSERT_GT(zipped.size(), 40u);
  const std::string gz_cut =
      write_bytes("cut.gz", Bytes(zipped.begin(), zipped.begin() + zipped.size() / 2));
  EXPECT_TRUE(test::throws_with<IOError>([&] { read_idx(gz_cut); },
                                         {"read_idx", "cut.gz", "gzip", "truncated"}));
  Bytes broken = zipped;
  for (size_t i = broken.size() / 2; i < broken.size() / 2 + 8; ++i) broken[i] ^= 0x5a;
  const std::string gz_bad = write_bytes("corrupt.gz", broken);
  EXPECT_TRUE(test::throws_with<IOError>([&] { read_idx(gz_bad); },
                                         {"read_idx", "corrupt.gz", "corrupt gzip"}));
}

TEST(Idx, GzippedNonIdxFile) {
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  const std::string p = tmp().file("hello.gz");
  oracle.run_code("import gzip\ngzip.open('" + p + "', 'wb').write(b'hello world')\nout = 0");
  EXPECT_TRUE(test::throws_with<IOError>([&] { read_idx(p); },
                                         {"read_idx", "hello.gz", "bad magic number 68 65 6c 6c"}));
}

// ---------------------------------------------------------------- Fashion-MNIST

TEST(FashionMNIST, MatchesNumpy) {
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  FashionMNIST train;  // default root, train=true
  FashionMNIST test(kFashion, false);
  EXPECT_EQ(train.size(), 60000);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(train.num_classes(), 10);
  const auto ref = oracle.run_code(
      "import gzip, numpy as np\n"
      "def load(name, off):\n"
      "    return np.frombuffer(gzip.open('" +
      kFashion +
      "/' + name).read(), np.uint8, offset=off)\n"
      "tl = torch.from_numpy(load('train-labels-idx1-ubyte.gz', 8).astype(np.int64))\n"
      "vl = torch.from_numpy(load('t10k-labels-idx1-ubyte.gz', 8).astype(np.int64))\n"
      "ti = torch.from_numpy(load('train-images-idx3-ubyte.gz', 16).copy()).reshape(60000, 1, 28, "
      "28)\n"
      "idx = torch.tensor([0, 1, 59999, 31337, 4])\n"
      "x = ti[idx].float().div(255)\n"
      "out = [tl, vl, x, (x - torch.tensor(0.2860)) / torch.tensor(0.3530), "
      "ti.sum(dtype=torch.int64)]");
  EXPECT_EQ(train.labels().to_vector<int64_t>(), ref[0].to_vector<int64_t>());
  EXPECT_EQ(test.labels().to_vector<int64_t>(), ref[1].to_vector<int64_t>());
  EXPECT_EQ(train.labels().slice(0, 0, 5).to_vector<int64_t>(),
            (std::vector<int64_t>{9, 0, 0, 3, 0}));
  int64_t pixel_sum = 0;
  for (uint8_t v : train.images().to_vector<uint8_t>()) pixel_sum += v;
  EXPECT_EQ(pixel_sum, ref[4].item<int64_t>());

  Batch b = train.get_batch({0, 1, 59999, 31337, 4});
  EXPECT_EQ(b.input.dtype(), kFloat32);
  EXPECT_EQ(b.input.shape(), (Shape{5, 1, 28, 28}));
  EXPECT_EQ(b.target.dtype(), kInt64);
  EXPECT_TRUE(test::all_close(b.input, ref[2], 0, 0));
  Example e = train.get(59999);
  EXPECT_EQ(e.input.shape(), (Shape{1, 28, 28}));
  EXPECT_TRUE(test::all_close(e.input, ref[2].select(0, 2), 0, 0));
  EXPECT_EQ(e.target.item<int64_t>(), ref[0].to_vector<int64_t>()[59999]);

  FashionMNIST norm(kFashion, true, {.mean = 0.2860, .std = 0.3530});
  EXPECT_TRUE(test::all_close(norm.get_batch({0, 1, 59999, 31337, 4}).input, ref[3], 1e-6, 1e-6));
}

TEST(FashionMNIST, SmallFilesAndErrors) {
  const std::string img = write_bytes("img", idx_u8({3, 2, 2}, iota_bytes(12)));
  const std::string lab = write_bytes("lab", idx_u8({3}, {2, 0, 1}));
  IdxDataset ds(img, lab);
  EXPECT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.num_classes(), 3);
  Batch b = ds.get_batch({2});
  EXPECT_EQ(b.input.shape(), (Shape{1, 1, 2, 2}));
  const Bytes px = iota_bytes(12);
  EXPECT_FLOAT_EQ(b.input.to_vector<float>()[3], float(px[11]) / 255.0f);

  const std::string lab4 = write_bytes("lab4", idx_u8({4}, {0, 0, 1, 1}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { IdxDataset(img, lab4); },
                                            {"IdxDataset", "3 images", "4 labels"}));
  const std::string lab_big = write_bytes("lab_big", idx_u8({3}, {0, 12, 1}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { IdxDataset(img, lab_big, {.num_classes = 10}); },
                                            {"IdxDataset", "label 1 is 12", "[0, 10)"}));
  EXPECT_TRUE(test::throws_with<IOError>([&] { IdxDataset(lab, lab); },
                                         {"IdxDataset", "expected uint8 images", "[3]"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { IdxDataset(img, lab, {.std = 0}); },
                                            {"IdxDataset", "std > 0"}));
  EXPECT_TRUE(
      test::throws_with<IOError>([] { FashionMNIST(tmp().file("nowhere")); },
                                 {"FashionMNIST", "train-images-idx3-ubyte.gz", "nowhere"}));
  // A root whose label file is truncated: the IDX error comes through with the file name.
  const fs::path root = tmp().path / "fm";
  fs::create_directories(root);
  fs::copy_file(img, root / "t10k-images-idx3-ubyte", fs::copy_options::overwrite_existing);
  write_bytes("fm/t10k-labels-idx1-ubyte", idx_u8({3}, {1, 2}));
  EXPECT_TRUE(test::throws_with<IOError>([&] { FashionMNIST(root.string(), false); },
                                         {"read_idx", "t10k-labels-idx1-ubyte", "truncated data"}));
}

// ---------------------------------------------------------------- CSV

TEST(Csv, BostonMatchesNumpy) {
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  const std::string path = kSklearnData + "/boston_house_prices.csv";
  // scikit-learn's format: a "506,13,,..." line, then quoted column names, then the data.
  CsvDataset ds(path, "MEDV", {.skip_rows = 1, .task = Task::Regression});
  EXPECT_EQ(ds.size(), 506);
  ASSERT_EQ(ds.feature_names().size(), 13u);
  EXPECT_EQ(ds.feature_names()[0], "CRIM");
  EXPECT_EQ(ds.feature_names()[12], "LSTAT");
  const auto ref = oracle.run_code(
      "import numpy as np\n"
      "d = np.loadtxt('" +
      path +
      "', delimiter=',', skiprows=2)\n"
      "out = [torch.from_numpy(d[:, :13]), torch.from_numpy(d[:, 13])]");
  EXPECT_EQ(ds.features().dtype(), kFloat32);
  EXPECT_TRUE(test::all_close(ds.features(), ref[0].to(kFloat32), 0, 0));
  EXPECT_TRUE(test::all_close(ds.targets(), ref[1].to(kFloat32), 0, 0));
  // The label by index gives the same; float64 keeps the file's values exactly.
  CsvDataset ds64(
      path, -1,
      {.header = CsvHeader::Yes, .skip_rows = 1, .dtype = kFloat64, .task = Task::Regression});
  EXPECT_TRUE(test::all_close(ds64.features(), ref[0], 0, 0));
  EXPECT_TRUE(test::all_close(ds64.targets(), ref[1], 0, 0));
  // Without skip_rows the header line is not where it belongs: the error says where.
  EXPECT_TRUE(
      test::throws_with<IOError>([&] { CsvDataset(path, 13, {.task = Task::Regression}); },
                                 {"boston_house_prices.csv", "line 1", "column 3", "empty cell"}));
}

TEST(Csv, IrisClassification) {
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  const std::string path = kSklearnData + "/iris.csv";
  // "150,4,setosa,versicolor,virginica" has 5 cells like the data: skipped as a non-header.
  CsvDataset ds(path, 4, {.header = CsvHeader::No, .skip_rows = 1});
  const auto ref = oracle.run_code(
      "import numpy as np\n"
      "d = np.loadtxt('" +
      path +
      "', delimiter=',', skiprows=1)\n"
      "out = [torch.from_numpy(d[:, :4]).float(), torch.from_numpy(d[:, 4]).long()]");
  EXPECT_EQ(ds.size(), 150);
  EXPECT_EQ(ds.num_classes(), 3);
  EXPECT_EQ(ds.targets().dtype(), kInt64);
  EXPECT_TRUE(test::all_close(ds.features(), ref[0], 0, 0));
  EXPECT_EQ(ds.targets().to_vector<int64_t>(), ref[1].to_vector<int64_t>());
  Batch b = ds.get_batch({149, 0});
  EXPECT_EQ(b.input.shape(), (Shape{2, 4}));
  EXPECT_EQ(b.target.to_vector<int64_t>(), (std::vector<int64_t>{2, 0}));
}

TEST(Csv, SmallFiles) {
  // Header auto-detected, label in the middle, quotes, spaces, CRLF, blank lines, ';' delimiter.
  const std::string p =
      write_text("small.csv", "a; \"label\" ;b\r\n1.5; 2 ;-3e2\r\n\r\n+4;0;\"5\"\n");
  CsvDataset ds(p, "label", {.delimiter = ';'});
  EXPECT_EQ(ds.size(), 2);
  EXPECT_EQ(ds.feature_names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ds.features().to_vector<float>(), (std::vector<float>{1.5f, -300.0f, 4.0f, 5.0f}));
  EXPECT_EQ(ds.targets().to_vector<int64_t>(), (std::vector<int64_t>{2, 0}));
  Example e = ds.get(1);
  EXPECT_EQ(e.input.shape(), (Shape{2}));
  EXPECT_EQ(e.target.item<int64_t>(), 0);
  // No header: auto sees numbers only.
  CsvDataset nh(write_text("nh.csv", "1,2,0.5\n3,4,0.25\n"), 2, {.task = Task::Regression});
  EXPECT_EQ(nh.size(), 2);
  EXPECT_EQ(nh.targets().to_vector<float>(), (std::vector<float>{0.5f, 0.25f}));
  EXPECT_EQ(nh.feature_names(), (std::vector<std::string>{"", ""}));
}

TEST(Csv, Errors) {
  EXPECT_TRUE(test::throws_with<IOError>([] { CsvDataset(tmp().file("none.csv"), 0); },
                                         {"CsvDataset", "none.csv", "cannot open"}));
  const std::string text = write_text("text.csv", "x,y,label\n1,2,0\n3,abc,1\n");
  EXPECT_TRUE(test::throws_with<IOError>(
      [&] { CsvDataset(text, "label"); },
      {"CsvDataset", "text.csv", "line 3", "column 2 (\"y\")", "\"abc\""}));
  const std::string ragged = write_text("ragged.csv", "x,y,label\n1,2,0\n\n3,1\n");
  EXPECT_TRUE(test::throws_with<IOError>([&] { CsvDataset(ragged, "label"); },
                                         {"ragged.csv", "line 4", "2 cells", "expected 3"}));
  const std::string nan = write_text("nan.csv", "1,2,0\n3,nan,1\n");
  EXPECT_TRUE(test::throws_with<IOError>([&] { CsvDataset(nan, -1); },
                                         {"nan.csv", "line 2", "column 2", "finite", "\"nan\""}));
  const std::string inf = write_text("inf.csv", "1,2,0\n3,-inf,1\n");
  EXPECT_TRUE(
      test::throws_with<IOError>([&] { CsvDataset(inf, -1); }, {"inf.csv", "line 2", "\"-inf\""}));
  const std::string empty_cell = write_text("empty_cell.csv", "1,2,0\n3,,1\n");
  EXPECT_TRUE(test::throws_with<IOError>([&] { CsvDataset(empty_cell, -1); },
                                         {"empty_cell.csv", "line 2", "column 2", "empty cell"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { CsvDataset(text, "target"); },
      {"text.csv", "no label column \"target\"", "\"x\", \"y\", \"label\""}));
  const std::string nums = write_text("nums.csv", "1,2,0\n3,4,1\n");
  EXPECT_TRUE(
      test::throws_with<ValueError>([&] { CsvDataset(nums, "label"); }, {"nums.csv", "no header"}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { CsvDataset(nums, 3); },
                                            {"nums.csv", "label column 3", "3 columns"}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { CsvDataset(nums, -4); },
                                            {"nums.csv", "label column -4"}));
  const std::string frac = write_text("frac.csv", "1,2,0\n3,4,1.5\n");
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { CsvDataset(frac, 2); },
      {"frac.csv", "line 2", "non-negative integer", "1.5", "Regression"}));
  // As a regression target the fraction is a value like any other, read as written.
  CsvDataset regression(frac, 2, {.task = Task::Regression});
  EXPECT_EQ(regression.targets().to_vector<double>(), (std::vector<double>{0, 1.5}));
  EXPECT_EQ(regression.features().to_vector<double>(), (std::vector<double>{1, 2, 3, 4}));
  const std::string blank = write_text("blank.csv", "\n\n");
  EXPECT_TRUE(
      test::throws_with<ValueError>([&] { CsvDataset(blank, 0); }, {"blank.csv", "no data lines"}));
  const std::string only_header = write_text("only_header.csv", "a,b\n");
  EXPECT_TRUE(test::throws_with<ValueError>([&] { CsvDataset(only_header, "b"); },
                                            {"only_header.csv", "no data lines"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { CsvDataset(nums, 2, {.dtype = kInt64}); },
                                            {"CsvDataset", "floating", "int64"}));
  // A header forced on a file without one: the first data line's numbers become names.
  CsvDataset forced(nums, 2, {.header = CsvHeader::Yes});
  EXPECT_EQ(forced.size(), 1);
  EXPECT_EQ(forced.feature_names(), (std::vector<std::string>{"1", "2"}));
}
