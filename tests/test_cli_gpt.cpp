// `anvil train --model gpt --data text:FILE` and `anvil generate`: a language model learned
// from a text file, resumed, exported, and continuing prompts; the errors of bad arguments.
#include <unistd.h>

#include <filesystem>

#include "anvil/core/file.h"
#include "anvil/io/checkpoint.h"
#include "anvil/io/safetensors.h"
#include "support/check.h"
#include "support/cli.h"

using namespace anvil;
namespace fs = std::filesystem;
using test::run_cli;

namespace {

class CliGpt : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("anvil_cli_gpt_" + std::to_string(getpid()));
    fs::create_directories(dir_);
    // A text a small model learns quickly: the alphabet, over and over, one rotation a line.
    std::string text;
    const std::string abc = "abcdefghijklmnopqrstuvwxyz";
    for (int i = 0; i < 300; ++i) text += abc.substr(i % 26) + abc.substr(0, i % 26) + "\n";
    corpus_ = (dir_ / "abc.txt").string();
    write_file_atomic(corpus_, text);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string train_args(const std::string& out, int epochs) const {
    return "train --model gpt --data text:" + corpus_ +
           " --tokenizer byte --context 32 --gpt '{\"n_layer\": 1, \"n_embd\": 32, \"dropout\": 0}'"
           " --batch-size 16 --lr 0.01 --seed 3 --quiet --sample-tokens 0 --epochs " +
           std::to_string(epochs) + " --output " + out;
  }
  fs::path dir_;
  std::string corpus_;
};

TEST_F(CliGpt, TrainsResumesExportsAndGenerates) {
  const std::string run = path("run");
  test::CliResult r = run_cli(train_args(run, 2));
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* f : {"run.json", "model.json", "tokenizer.json", "history.csv",
                        "checkpoint.safetensors", "weights.safetensors"})
    EXPECT_TRUE(fs::exists(fs::path(run) / f)) << f;
  EXPECT_NE(r.output.find("perplexity"), std::string::npos) << r.output;
  EXPECT_NE(read_file(run + "/history.csv").find("val_perplexity"), std::string::npos);

  // Resumed for a third epoch from the checkpoint.
  r = run_cli("train --resume " + run + " --epochs 3 --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(io::load_checkpoint(run + "/checkpoint.safetensors").epoch, 3);

  // eval reports the held-out text's loss and perplexity, as the last epoch's validation did.
  r = run_cli("eval --run " + run);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("perplexity"), std::string::npos) << r.output;

  // Greedy continuation of the alphabet: learned, and the same every time.
  const std::string gen =
      "generate --run " + run + " --prompt abcdefgh --max-new-tokens 8 --greedy";
  r = run_cli(gen);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "abcdefghijklmnop\n");
  EXPECT_EQ(run_cli(gen).output, r.output);
  // Sampling is seeded.
  const std::string sample = "generate --run " + run + " --prompt q --max-new-tokens 20 --seed 4";
  EXPECT_EQ(run_cli(sample).output, run_cli(sample).output);

  // The exported model file carries the tokenizer and continues as the run does.
  r = run_cli("export --run " + run);
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_cli("info " + run + "/model.anvil");
  EXPECT_NE(r.output.find("tokenizer: byte, 257 tokens, <|endoftext|> = 256"), std::string::npos)
      << r.output;
  r = run_cli("generate --model " + run +
              "/model.anvil --prompt abcdefgh --max-new-tokens 8 --greedy");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "abcdefghijklmnop\n");
  // A tokenizer given overrides the file's (here the same one, from the run).
  r = run_cli("generate --model " + run + "/model.anvil --tokenizer " + run +
              "/tokenizer.json --prompt abcdefgh --max-new-tokens 8 --greedy");
  EXPECT_EQ(r.output, "abcdefghijklmnop\n");
}

TEST_F(CliGpt, BadArgumentsGiveClearErrors) {
  EXPECT_TRUE(test::fails_with("train --model gpt --quiet --output " + path("x"),
                               {"--model gpt", "text:FILE", "fashion-mnist"}));
  EXPECT_TRUE(
      test::fails_with("train --model mlp --data text:" + corpus_ + " --output " + path("x"),
                       {"--model gpt", "mlp"}));
  EXPECT_TRUE(test::fails_with(
      "train --model gpt --data text:" + corpus_ + " --tokenizer bpe:12 --output " + path("x"),
      {"bpe:N", "bpe:12"}));
  EXPECT_TRUE(test::fails_with(
      "train --model gpt --data text:" + corpus_ + " --gpt '{\"layers\": 2}' --output " + path("x"),
      {"unknown field \"layers\""}));
  EXPECT_TRUE(test::fails_with(
      "train --model gpt --data text:" + path("missing.txt") + " --output " + path("x"),
      {"missing.txt"}));
  EXPECT_TRUE(test::fails_with("generate --prompt a", {"--run DIR or --model FILE"}));
  EXPECT_TRUE(test::fails_with("generate --run " + path("nothing"), {"model.json"}));
}

}  // namespace
