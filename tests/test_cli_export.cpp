// `anvil export` and `anvil predict --model`: a run written as one model file predicts what the
// run predicts, from raw features; interrupted runs and bare checkpoints export; safetensors
// and float16 exports; `anvil info FILE`; and the errors a user meets on the way.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "anvil/core/file.h"
#include "anvil/io/checkpoint.h"
#include "anvil/io/model_file.h"
#include "anvil/io/safetensors.h"
#include "support/check.h"
#include "support/cli.h"
#include "support/oracle.h"

using namespace anvil;
namespace fs = std::filesystem;
using test::fails_with;
using test::run_cli;

namespace {

using Rows = std::vector<std::vector<double>>;

// The rows of a prediction CSV (index, prediction, p0, ...), without the header.
Rows parse_predictions(const std::string& csv) {
  Rows rows;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::vector<double> row;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) row.push_back(std::stod(cell));
    rows.push_back(row);
  }
  return rows;
}

// Same rows, probabilities within `tol` (the CSV prints 6 digits), and the same classes
// where the top two probabilities are more than 2 tol apart.
::testing::AssertionResult same_predictions(const std::string& a, const std::string& b,
                                            double tol) {
  Rows ra = parse_predictions(a), rb = parse_predictions(b);
  if (ra.empty() || ra.size() != rb.size())
    return ::testing::AssertionFailure() << ra.size() << " rows against " << rb.size();
  for (size_t i = 0; i < ra.size(); ++i) {
    if (ra[i].size() != rb[i].size())
      return ::testing::AssertionFailure() << "row " << i << " has another number of columns";
    std::vector<double> p(ra[i].begin() + 2, ra[i].end());
    std::sort(p.rbegin(), p.rend());
    if (ra[i][1] != rb[i][1] && (p.size() < 2 || p[0] - p[1] > 2 * tol))
      return ::testing::AssertionFailure() << "row " << i << " differs in its class";
    for (size_t j = 2; j < ra[i].size(); ++j)
      if (std::abs(ra[i][j] - rb[i][j]) > tol)
        return ::testing::AssertionFailure()
               << "row " << i << ": p" << j - 2 << " " << ra[i][j] << " against " << rb[i][j];
  }
  return ::testing::AssertionSuccess();
}

// One temporary folder for the suite: a CSV whose features are far from standardised (so a
// model that forgot the run's scaling predicts differently) and two runs of one epoch.
class CliExport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("anvil_cli_export_" + std::to_string(getpid()));
    fs::create_directories(dir_);
    Generator g(3);
    auto r = randn({200, 2}, kFloat64, &g).to_vector<double>();
    lines_.clear();
    for (size_t i = 0; i < 200; ++i)
      lines_.push_back(std::to_string(3 * r[2 * i] + 5) + "," +
                       std::to_string(0.5 * r[2 * i + 1] - 2) + "," +
                       (r[2 * i] - r[2 * i + 1] > 0 ? "1" : "0"));
    std::string csv = "x0,x1,label\n";
    for (const auto& l : lines_) csv += l + "\n";
    write_file_atomic(path("data.csv"), csv);
    // A model whose first layer is not dense: the scaling goes into a batchnorm in front.
    write_file_atomic(
        path("bn.json"),
        R"({"input_shape": [2], "layers": [{"type": "batchnorm"}, {"type": "dense", "units": 8},)"
        R"( {"type": "relu"}, {"type": "dense", "units": 2}]})");
    const std::string common =
        " --data csv:" + path("data.csv") +
        " --label-column label --epochs 1 --batch-size 16 --lr 0.01 --quiet --output ";
    train_mlp_ = run_cli("train --model mlp" + common + path("mlp"));
    train_bn_ = run_cli("train --model " + path("bn.json") + common + path("bn"));
    write_test_rows();
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  void SetUp() override {
    ASSERT_EQ(train_mlp_.status, 0) << train_mlp_.output;
    ASSERT_EQ(train_bn_.status, 0) << train_bn_.output;
  }

  // The raw rows of the runs' test split (as `anvil train` draws it: 20%, seed 0), with and
  // without the label column, for predicting with a model file what the run predicts.
  static void write_test_rows() {
    auto split = data::train_test_split(
        std::make_shared<data::TensorDataset>(zeros({200, 1}), zeros({200})), 0.2, 0);
    std::string with = "x0,x1,label\n", without = "x0,x1\n";
    for (int64_t i : split.second->indices()) {
      with += lines_[size_t(i)] + "\n";
      without += lines_[size_t(i)].substr(0, lines_[size_t(i)].rfind(',')) + "\n";
    }
    write_file_atomic(path("test_rows.csv"), with);
    write_file_atomic(path("test_features.csv"), without);
  }

  static std::string path(const std::string& name) { return (dir_ / name).string(); }

  // `anvil ARGS --output FILE`, which must succeed; the file's contents.
  static std::string predictions(const std::string& args, const std::string& file) {
    test::CliResult r = run_cli(args + " --output " + path(file));
    EXPECT_EQ(r.status, 0) << args << "\n" << r.output;
    return r.status == 0 ? read_file(path(file)) : "";
  }

  static fs::path dir_;
  static std::vector<std::string> lines_;
  static test::CliResult train_mlp_, train_bn_;
};
fs::path CliExport::dir_;
std::vector<std::string> CliExport::lines_;
test::CliResult CliExport::train_mlp_, CliExport::train_bn_;

}  // namespace

TEST_F(CliExport, ModelFilePredictsWhatTheRunPredictsFromRawFeatures) {
  test::CliResult e = run_cli("export --run " + path("mlp"));
  ASSERT_EQ(e.status, 0) << e.output;
  ASSERT_TRUE(fs::exists(path("mlp/model.anvil")));
  EXPECT_NE(e.output.find("after epoch 1"), std::string::npos) << e.output;
  EXPECT_NE(e.output.find("folded into layer 0 (dense)"), std::string::npos) << e.output;

  std::string from_run = predictions("predict --run " + path("mlp"), "run.csv");
  EXPECT_EQ(from_run.rfind("index,prediction,p0,p1\n", 0), 0u) << from_run;
  // A features-only file: every column is an input.
  std::string from_file = predictions(
      "predict --model " + path("mlp/model.anvil") + " --data csv:" + path("test_features.csv"),
      "file.csv");
  EXPECT_EQ(from_file.rfind("index,prediction,p0,p1\n", 0), 0u) << from_file;
  EXPECT_TRUE(same_predictions(from_run, from_file, 1e-5));

  // The file loads through the library too, in eval mode.
  auto model = io::load_model(path("mlp/model.anvil"));
  EXPECT_FALSE(model->is_training());
  EXPECT_EQ(model->num_parameters(), 2 * 256 + 256 + 256 * 128 + 128 + 128 * 2 + 2);
}

TEST_F(CliExport, BatchnormFirstModelGetsTheScalingInFront) {
  test::CliResult e = run_cli("export --run " + path("bn") + " --output " + path("out/bn.anvil"));
  ASSERT_EQ(e.status, 0) << e.output;
  EXPECT_NE(e.output.find("batchnorm layer put in front"), std::string::npos) << e.output;
  std::string from_run = predictions("predict --run " + path("bn"), "bn_run.csv");
  std::string from_file = predictions("predict --model " + path("out/bn.anvil") + " --data csv:" +
                                          path("test_rows.csv") + " --label-column label",
                                      "bn_file.csv");
  EXPECT_TRUE(same_predictions(from_run, from_file, 1e-5));
}

TEST_F(CliExport, InterruptedRunsAndCheckpointsExportTheirLastEpoch) {
  ASSERT_EQ(run_cli("export --run " + path("mlp") + " --output " + path("full.anvil")).status, 0);
  StateDict full = io::load_safetensors(path("full.anvil"));

  // A run stopped before its end has a checkpoint but no weights.safetensors.
  fs::create_directories(path("cut"));
  for (const char* f : {"model.json", "run.json", "checkpoint.safetensors"})
    fs::copy_file(path("mlp/") + f, path("cut/") + f);
  test::CliResult e = run_cli("export --run " + path("cut"));
  ASSERT_EQ(e.status, 0) << e.output;
  StateDict cut = io::load_safetensors(path("cut/model.anvil"));
  ASSERT_EQ(cut.size(), full.size());
  for (const auto& [k, v] : full) EXPECT_TRUE(equal(v, cut.at(k))) << k;
  // Predicting from the interrupted run uses its checkpoint too.
  EXPECT_EQ(predictions("predict --run " + path("cut"), "cut.csv"),
            predictions("predict --run " + path("mlp"), "mlp.csv"));

  // A run without a checkpoint (trained for 0 epochs, or from before checkpoints) exports its
  // model.json and weights.safetensors.
  fs::create_directories(path("old"));
  for (const char* f : {"model.json", "run.json", "weights.safetensors"})
    fs::copy_file(path("mlp/") + f, path("old/") + f);
  e = run_cli("export --run " + path("old"));
  ASSERT_EQ(e.status, 0) << e.output;
  StateDict old = io::load_safetensors(path("old/model.anvil"));
  for (const auto& [k, v] : full) EXPECT_TRUE(equal(v, old.at(k))) << k;

  // A checkpoint named directly, beside its run.json.
  e = run_cli("export --checkpoint " + path("mlp/checkpoint.safetensors") + " --output " +
              path("ck.anvil"));
  ASSERT_EQ(e.status, 0) << e.output;
  StateDict ck = io::load_safetensors(path("ck.anvil"));
  for (const auto& [k, v] : full) EXPECT_TRUE(equal(v, ck.at(k))) << k;

  // A checkpoint saved without an architecture needs --architecture.
  io::Checkpoint bare = io::load_checkpoint(path("mlp/checkpoint.safetensors"));
  bare.architecture.clear();
  fs::create_directories(path("bare"));
  io::save_checkpoint(bare, path("bare/ckpt.safetensors"));
  EXPECT_TRUE(
      fails_with("export --checkpoint " + path("bare/ckpt.safetensors"),
                 {path("bare/ckpt.safetensors"), "no architecture", "--architecture FILE"}));
  e = run_cli("export --checkpoint " + path("bare/ckpt.safetensors") + " --architecture " +
              path("mlp/model.json"));
  ASSERT_EQ(e.status, 0) << e.output;
  EXPECT_TRUE(fs::exists(path("bare/model.anvil")));
}

TEST_F(CliExport, SafetensorsAndFloat16Exports) {
  ASSERT_EQ(run_cli("export --run " + path("mlp") + " --output " + path("f32.anvil")).status, 0);
  test::CliResult e = run_cli("export --run " + path("mlp") + " --format safetensors --output " +
                              path("w.safetensors"));
  ASSERT_EQ(e.status, 0) << e.output;
  std::map<std::string, std::string> meta;
  StateDict w = io::load_safetensors(path("w.safetensors"), &meta);
  EXPECT_EQ(meta["format"], "pt");
  EXPECT_EQ(meta.count("architecture"), 0u);
  // The state-dict names of the trained model, holding the exported (folded) weights.
  StateDict trained = io::load_safetensors(path("mlp/weights.safetensors")),
            f32 = io::load_safetensors(path("f32.anvil"));
  ASSERT_EQ(w.size(), trained.size());
  for (const auto& [k, v] : trained) {
    ASSERT_TRUE(w.count(k)) << k;
    EXPECT_EQ(w.at(k).shape(), v.shape()) << k;
    EXPECT_TRUE(equal(w.at(k), f32.at(k))) << k;
  }

  e = run_cli("export --run " + path("mlp") + " --dtype float16 --output " + path("f16.anvil"));
  ASSERT_EQ(e.status, 0) << e.output;
  EXPECT_NE(e.output.find("float16"), std::string::npos) << e.output;
  StateDict f16 = io::load_safetensors(path("f16.anvil"));
  ASSERT_EQ(f16.size(), f32.size());
  for (const auto& [k, v] : f16) {
    EXPECT_EQ(v.dtype(), kFloat16) << k;
    EXPECT_TRUE(test::all_close(v.to(kFloat32), f32.at(k), 1e-3, 1e-3)) << k;
  }
  std::string p32 = predictions(
      "predict --model " + path("f32.anvil") + " --data csv:" + path("test_features.csv"),
      "p32.csv");
  // Run in float16 as loaded, or in float32 when asked.
  std::string p16 = predictions(
      "predict --model " + path("f16.anvil") + " --data csv:" + path("test_features.csv"),
      "p16.csv");
  EXPECT_TRUE(same_predictions(p32, p16, 1e-2));
  std::string up = predictions("predict --model " + path("f16.anvil") +
                                   " --dtype float32 --data csv:" + path("test_features.csv"),
                               "up.csv");
  EXPECT_TRUE(same_predictions(p32, up, 1e-2));
}

TEST_F(CliExport, SafetensorsExportLoadsIntoTorchOnRawFeatures) {
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  ASSERT_EQ(run_cli("export --run " + path("mlp") + " --format safetensors --output " +
                    path("t.safetensors"))
                .status,
            0);
  ASSERT_EQ(run_cli("export --run " + path("mlp") + " --output " + path("t.anvil")).status, 0);
  std::string mine = predictions(
      "predict --model " + path("t.anvil") + " --data csv:" + path("test_features.csv"), "t.csv");
  Tensor x = data::CsvDataset(path("test_rows.csv"), "label").features();
  auto theirs = oracle.run_code(
      "import torch.nn as nn\n"
      "from safetensors.torch import load_file\n"
      "m = nn.Sequential(nn.Linear(2, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 128), "
      "nn.ReLU(),"
      " nn.Linear(128, 2))\n"
      "m.load_state_dict(load_file('" +
          path("t.safetensors") +
          "'), strict=True)\n"
          "m.eval()\nwith torch.no_grad(): out = torch.softmax(m(a), 1)\n",
      {x});
  Rows rows = parse_predictions(mine);
  ASSERT_EQ(int64_t(rows.size()), theirs[0].size(0));
  auto p = theirs[0].contiguous().to_vector<float>();
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < 2; ++j) EXPECT_NEAR(rows[i][2 + j], p[2 * i + j], 1e-5) << i;
}

TEST_F(CliExport, InfoDescribesModelFilesCheckpointsAndSafetensors) {
  ASSERT_EQ(run_cli("export --run " + path("mlp") + " --output " + path("i.anvil")).status, 0);
  test::CliResult r = run_cli("info " + path("i.anvil"));
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* s : {"anvil model file", "dense", "parameters: 33922", "float32"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
  r = run_cli("info " + path("mlp/checkpoint.safetensors"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("anvil checkpoint after epoch 1"), std::string::npos) << r.output;
  r = run_cli("info " + path("mlp/weights.safetensors"));
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* s : {"safetensors file", "0.weight  float32  [256, 2]"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
  EXPECT_TRUE(fails_with("info " + path("nothing.anvil"), {path("nothing.anvil")}));
}

TEST_F(CliExport, ErrorsNameTheFileAndTheWayOut) {
  EXPECT_TRUE(fails_with("export --run " + path("missing"), {path("missing"), "does not exist"}));
  fs::create_directories(path("empty"));
  EXPECT_TRUE(
      fails_with("export --run " + path("empty"), {path("empty"), "checkpoint.safetensors"}));
  EXPECT_TRUE(fails_with("export", {"give either --run DIR", "--checkpoint FILE"}));
  EXPECT_TRUE(fails_with("export --checkpoint " + path("data.csv"),
                         {path("data.csv"), "expected a checkpoint"}));
  EXPECT_NE(run_cli("export --run " + path("mlp") + " --format onnx").status, 0);
  EXPECT_NE(run_cli("export --run " + path("mlp") + " --dtype int8").status, 0);

  // --model wants a model file: not a CSV, not plain weights, not a run directory.
  EXPECT_TRUE(fails_with("predict --model " + path("data.csv"),
                         {path("data.csv"), "expects a model file written by `anvil export`"}));
  EXPECT_TRUE(fails_with("predict --model " + path("mlp/weights.safetensors"),
                         {path("mlp/weights.safetensors"), "not an anvil model file"}));
  EXPECT_TRUE(
      fails_with("predict --model " + path("mlp"), {path("mlp"), "is a directory", "--run"}));
  EXPECT_TRUE(fails_with("predict", {"give either --run DIR", "--model FILE"}));
  // Three columns for a two-feature model: the label column must be named.
  ASSERT_EQ(run_cli("export --run " + path("mlp") + " --output " + path("e.anvil")).status, 0);
  EXPECT_TRUE(fails_with("predict --model " + path("e.anvil") + " --data csv:" + path("data.csv"),
                         {path("e.anvil"), "[3] per sample", "--label-column"}));
}

TEST_F(CliExport, ModelFilePredictsTheFashionMnistTestSet) {
  if (!fs::exists(data::FashionMNIST::kDefaultRoot)) GTEST_SKIP() << "no Fashion-MNIST files";
  nn::ModelBuilder arch({1, 1, 28, 28});
  arch.flatten().dense(10);
  io::save_model(arch, *arch.build(), path("fm.anvil"));
  std::string csv = predictions("predict --model " + path("fm.anvil"), "fm.csv");
  EXPECT_EQ(csv.rfind("index,prediction,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9\n", 0), 0u);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 10001);
}
