// `anvil train --data series:FILE` end to end on a small sine wave: it trains, reports the
// held-out errors in the series' units beside the persistence forecast's, saves a run that
// `anvil eval` reads back, and refuses bad requests with a message.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "anvil/core/file.h"
#include "support/check.h"
#include "support/cli.h"

using namespace anvil;
namespace fs = std::filesystem;
using test::fails_with;
using test::run_cli;

namespace {
class CliSeries : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("anvil_cli_series_" + std::to_string(getpid()));
    fs::create_directories(dir_);
    std::string csv = "step,value\n";
    for (int i = 0; i < 120; ++i) {
      const std::string v = std::to_string(20 + 10 * std::sin(0.3 * i));
      value_.push_back(std::stod(v));
      csv += std::to_string(i) + "," + v + "\n";
    }
    write_file_atomic(path("sine.csv"), csv);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // The number after `key` in `text`, or NaN.
  static double number_after(const std::string& text, const std::string& key) {
    auto pos = text.find(key);
    return pos == std::string::npos ? NAN : std::stod(text.substr(pos + key.size()));
  }
  fs::path dir_;
  std::vector<double> value_;  // the series as written
};
}  // namespace

TEST_F(CliSeries, TrainsReportsAgainstPersistenceAndEvalReadsTheRun) {
  test::CliResult t = run_cli("train --data series:" + path("sine.csv") +
                              " --column value --window 8 --horizon 2 --epochs 2 --quiet "
                              "--output " +
                              path("run"));
  ASSERT_EQ(t.status, 0) << t.output;
  for (const char* f :
       {"model.json", "weights.safetensors", "run.json", "history.csv", "checkpoint.safetensors"})
    EXPECT_TRUE(fs::exists(path("run/") + f)) << f;
  // 120 rows, the last 24 held out: 24 - 2 + 1 = 23 test windows.
  EXPECT_NE(t.output.find("held-out 23 windows (original units): mse "), std::string::npos)
      << t.output;
  const double mse = number_after(t.output, "(original units): mse ");
  const double persistence = number_after(t.output, "persistence: mse ");
  EXPECT_GT(mse, 0) << t.output;
  // Test window i forecasts rows 96 + i and 97 + i; persistence repeats row 95 + i.
  double want = 0;
  for (int i = 0; i < 23; ++i)
    for (int k = 0; k < 2; ++k)
      want += std::pow(value_[size_t(96 + i + k)] - value_[size_t(95 + i)], 2);
  EXPECT_NEAR(persistence, want / 46, 1e-4 * want / 46) << t.output;
  EXPECT_NE(t.output.find("  mae "), std::string::npos) << t.output;

  // The default model for a series is the lstm preset, forecasting the horizon's 2 values.
  const std::string model = read_file(path("run/model.json"));
  EXPECT_NE(model.find("\"lstm\""), std::string::npos) << model;
  EXPECT_NE(model.find("\"last_state\""), std::string::npos) << model;
  const std::string run = read_file(path("run/run.json"));
  EXPECT_NE(run.find("\"window\": 8"), std::string::npos) << run;
  EXPECT_NE(run.find("\"target_std\""), std::string::npos) << run;

  // eval rebuilds the windows with the saved scaling and reports the same errors.
  test::CliResult e = run_cli("eval --run " + path("run"));
  ASSERT_EQ(e.status, 0) << e.output;
  EXPECT_NE(e.output.find("samples 23"), std::string::npos) << e.output;
  EXPECT_DOUBLE_EQ(number_after(e.output, "(original units): mse "), mse) << e.output;
  EXPECT_DOUBLE_EQ(number_after(e.output, "persistence: mse "), persistence) << e.output;

  // predict: one line per held-out window, both horizon steps, in the series' units (20 +- 10).
  test::CliResult p = run_cli("predict --run " + path("run") + " --output " + path("pred.csv"));
  ASSERT_EQ(p.status, 0) << p.output;
  const std::string pred = read_file(path("pred.csv"));
  EXPECT_EQ(pred.rfind("index,prediction_1,prediction_2\n", 0), 0u) << pred;
  EXPECT_EQ(std::count(pred.begin(), pred.end(), '\n'), 24) << pred;
  // Its forecasts give the mse that train reported, in the series' units.
  std::istringstream lines(pred.substr(pred.find('\n') + 1));
  std::string line;
  double se = 0;
  for (int i = 0; std::getline(lines, line); ++i) {
    std::istringstream cells(line);
    std::string index, f1, f2;
    std::getline(cells, index, ',');
    std::getline(cells, f1, ',');
    std::getline(cells, f2, ',');
    se += std::pow(std::stod(f1) - value_[size_t(96 + i)], 2) +
          std::pow(std::stod(f2) - value_[size_t(97 + i)], 2);
  }
  EXPECT_NEAR(se / 46, mse, 1e-3 * mse) << pred;
  // A model file cannot hold the series' scaling yet: export says so.
  EXPECT_TRUE(fails_with("export --run " + path("run"), {"standardised windows", "data.scaling"}));
}

TEST_F(CliSeries, AnMlpOnTheWindowsAndSeveralInputColumns) {
  test::CliResult t = run_cli("train --data series:" + path("sine.csv") +
                              " --model mlp --input-columns value,step --window 4 --epochs 1 "
                              "--quiet --output " +
                              path("mlp"));
  ASSERT_EQ(t.status, 0) << t.output;
  EXPECT_NE(t.output.find("held-out 24 windows"), std::string::npos) << t.output;
  EXPECT_NE(read_file(path("mlp/run.json")).find("\"sample_shape\": [\n      4,\n      2\n"),
            std::string::npos);
}

TEST_F(CliSeries, BadRequestsGiveAMessageAndAFailingStatus) {
  const std::string data = " --data series:" + path("sine.csv");
  const std::string out = " --quiet --output " + path("bad");
  EXPECT_TRUE(fails_with("train" + data + " --column price" + out,
                         {"sine.csv", "no column \"price\"", "\"step\", \"value\""}));
  EXPECT_TRUE(fails_with("train" + data + " --window 200" + out,
                         {"window + horizon = 201", "the series has 120"}));
  EXPECT_TRUE(fails_with("train" + data + " --window 0" + out, {"--window"}));
  EXPECT_TRUE(fails_with("train" + data + " --test-fraction 0" + out, {"--test-fraction > 0"}));
  EXPECT_TRUE(fails_with("train" + data + " --task classification" + out, {"regression"}));
  write_file_atomic(path("table.csv"), "x,y\n1,2\n3,4\n5,6\n7,8\n9,10\n");
  EXPECT_TRUE(
      fails_with("train --model lstm --data csv:" + path("table.csv") + " --task regression" + out,
                 {"lstm preset needs sequence inputs"}));
}
