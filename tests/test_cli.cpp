// The `anvil` program end to end on a small CSV: train, eval, predict, and its errors.
#include <unistd.h>

#include <filesystem>

#include "anvil/core/file.h"
#include "support/check.h"
#include "support/cli.h"

using namespace anvil;
namespace fs = std::filesystem;
using test::run_cli;

namespace {
class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("anvil_cli_" + std::to_string(getpid()));
    fs::create_directories(dir_);
    // Two features; the class is 1 when x0 + x1 > 0: learnable by a linear model.
    Generator g(1);
    auto x = randn({200, 2}, kFloat64, &g).to_vector<double>();
    std::string csv = "x0,x1,label\n";
    for (size_t i = 0; i < 200; ++i)
      csv += std::to_string(x[2 * i]) + "," + std::to_string(x[2 * i + 1]) + "," +
             (x[2 * i] + x[2 * i + 1] > 0 ? "1" : "0") + "\n";
    write_file_atomic(path("data.csv"), csv);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};
}  // namespace

TEST_F(Cli, TrainEvalPredictRoundTrip) {
  test::CliResult t = run_cli("train --model linear --data csv:" + path("data.csv") +
                 " --label-column label --epochs 30 --batch-size 16 --lr 0.05 --quiet --output " +
                 path("run"));
  ASSERT_EQ(t.status, 0) << t.output;
  for (const char* f : {"model.json", "weights.safetensors", "run.json", "history.csv", "history.json"})
    EXPECT_TRUE(fs::exists(path("run/") + f)) << f;
  EXPECT_NE(t.output.find("test  accuracy"), std::string::npos) << t.output;

  test::CliResult e = run_cli("eval --run " + path("run"));
  ASSERT_EQ(e.status, 0) << e.output;
  // 40 held-out samples of a linearly separable problem.
  auto pos = e.output.find("accuracy ");
  ASSERT_NE(pos, std::string::npos) << e.output;
  EXPECT_GT(std::stod(e.output.substr(pos + 9)), 0.9) << e.output;
  EXPECT_NE(e.output.find("samples 40"), std::string::npos) << e.output;

  test::CliResult p = run_cli("predict --run " + path("run") + " --output " + path("pred.csv"));
  ASSERT_EQ(p.status, 0) << p.output;
  std::string pred = read_file(path("pred.csv"));
  EXPECT_EQ(pred.rfind("index,prediction,p0,p1\n", 0), 0u);
  EXPECT_EQ(std::count(pred.begin(), pred.end(), '\n'), 41);
}

TEST_F(Cli, BadInputGivesAMessageAndAFailingStatus) {
  test::CliResult r = run_cli("train --model resnet9000 --data csv:" + path("data.csv") + " --quiet --output " + path("r"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("unknown model 'resnet9000'"), std::string::npos) << r.output;
  write_file_atomic(path("bad.json"), "{\"input_shape\": [2], \"layers\": [");
  r = run_cli("train --model " + path("bad.json") + " --data csv:" + path("data.csv") + " --quiet --output " + path("r"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("not valid JSON"), std::string::npos) << r.output;
  r = run_cli("train --data csv:/nonexistent.csv --quiet --output " + path("r"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("/nonexistent.csv"), std::string::npos) << r.output;
  r = run_cli("eval --run " + path("missing"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("run.json"), std::string::npos) << r.output;
  EXPECT_EQ(run_cli("info").status, 0);
}
