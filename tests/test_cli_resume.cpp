// `anvil train --resume DIR`: an interrupted run continued from its checkpoint trains only the
// remaining epochs and ends with the same weights as an uninterrupted one.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <vector>

#include "anvil/core/file.h"
#include "anvil/io/checkpoint.h"
#include "anvil/io/safetensors.h"
#include "support/check.h"
#include "support/cli.h"

using namespace anvil;
namespace fs = std::filesystem;

using test::run_cli;

TEST(CliResume, ResumedRunMatchesAnUninterruptedOne) {
  fs::path dir = fs::temp_directory_path() / ("anvil_cli_resume_" + std::to_string(getpid()));
  fs::create_directories(dir);
  Generator g(1);
  auto x = randn({200, 2}, kFloat64, &g).to_vector<double>();
  std::string csv = "x0,x1,label\n";
  for (size_t i = 0; i < 200; ++i)
    csv += std::to_string(x[2 * i]) + "," + std::to_string(x[2 * i + 1]) + "," +
           (x[2 * i] + x[2 * i + 1] > 0 ? "1" : "0") + "\n";
  write_file_atomic((dir / "data.csv").string(), csv);
  const std::string common = "--model mlp --data csv:" + (dir / "data.csv").string() +
                             " --label-column label --batch-size 16 --lr 0.01 --scheduler exponential"
                             " --seed 5 --quiet --output ";
  const std::string a = (dir / "a").string(), b = (dir / "b").string();

  test::CliResult ra = run_cli("train " + common + a + " --epochs 4");
  ASSERT_EQ(ra.status, 0) << ra.output;
  test::CliResult rb = run_cli("train " + common + b + " --epochs 2");
  ASSERT_EQ(rb.status, 0) << rb.output;
  EXPECT_EQ(io::load_checkpoint(b + "/checkpoint.safetensors").epoch, 2);
  const int64_t steps_before = io::load_checkpoint(b + "/checkpoint.safetensors").global_step;
  ASSERT_GT(steps_before, 0);
  // Not quiet: the resumed process prints a line per epoch it trains, so it shows what it did.
  test::CliResult rr = run_cli("train --resume " + b + " --epochs 4");
  ASSERT_EQ(rr.status, 0) << rr.output;
  const io::Checkpoint after = io::load_checkpoint(b + "/checkpoint.safetensors");
  EXPECT_EQ(after.epoch, 4);
  EXPECT_EQ(after.global_step, 2 * steps_before);
  // The same weights would come from retraining all 4 epochs with the same seed, so the
  // process itself must show that it started after the checkpoint: it says so, and it
  // trained epochs 3 and 4 and nothing before them.
  EXPECT_NE(rr.output.find("resuming " + b + " after epoch 2 of 4"), std::string::npos)
      << rr.output;
  std::vector<int> trained;
  std::istringstream lines_of(rr.output);
  for (std::string line; std::getline(lines_of, line);)
    if (int e = 0; std::sscanf(line.c_str(), "epoch %d/4 ", &e) == 1 && line.find(" loss ") != std::string::npos)
      trained.push_back(e);
  EXPECT_EQ(trained, (std::vector<int>{3, 4})) << rr.output;

  StateDict wa = io::load_safetensors(a + "/weights.safetensors");
  StateDict wb = io::load_safetensors(b + "/weights.safetensors");
  ASSERT_EQ(wa.size(), wb.size());
  for (const auto& [k, v] : wa) EXPECT_TRUE(equal(v, wb.at(k))) << k;
  EXPECT_EQ(read_file(a + "/history.csv").size() > 0, true);
  // Both histories have 4 epochs with the same losses (times differ).
  auto lines = [](const std::string& s) { return std::count(s.begin(), s.end(), '\n'); };
  EXPECT_EQ(lines(read_file(a + "/history.csv")), lines(read_file(b + "/history.csv")));

  // Resuming a directory without a run fails with a message, not a crash.
  test::CliResult bad = run_cli("train --quiet --resume " + (dir / "nothing").string());
  EXPECT_EQ(bad.status, 1) << bad.output;
  EXPECT_NE(bad.output.find("run.json"), std::string::npos) << bad.output;
  fs::remove_all(dir);
}
