// The subcommands of the `anvil` program, one file each (train_command.cpp, ...); main.cpp
// turns the command line into these arguments. Each returns the exit status and throws an
// anvil::Error, naming what was expected and what was found, for anything the user can fix.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tools/run_spec.h"

namespace anvil::tools {

// What a language-model run (--data text:FILE, --model gpt) adds to the training arguments.
struct LanguageModelArgs {
  // "byte", "bpe:N" (a byte-level BPE of N tokens trained on the corpus) or a tokenizer file
  // (anvil's JSON, or a directory with GPT-2's vocab.json and merges.txt).
  std::string tokenizer = "bpe:1024";
  int64_t context = 128;        // tokens per training window, and the model's n_positions
  std::string gpt;              // GPTConfig fields as a JSON object, over the CLI's small defaults
  int64_t sample_tokens = 200;  // a sample of this many tokens is printed after training
};

struct TrainArgs {
  DataSpec data;
  LanguageModelArgs lm;
  std::string model = "mlp", optimizer = "adam", scheduler = "none", loss, output = "runs/latest";
  std::string device = "cpu";
  std::string precision = "fp32";  // fp32, bf16 or fp16 (mixed precision on the device)
  int64_t epochs = 10, batch_size = 128, grad_accum = 1, warmup_epochs = 0;
  int64_t schedule_epochs = 0;         // the epochs the LR schedule spans (those of the first run)
  int64_t checkpoint_every_steps = 0;  // also checkpoint every N steps, mid-epoch (0: off)
  double lr = 1e-3, weight_decay = 0, clip_grad_norm = 0;
  uint64_t seed = 0;
  std::vector<std::string> metrics;
  bool quiet = false;
};

// Trains (or, with `resume`, continues the run in that directory from its checkpoint).
int train_command(TrainArgs a, const std::string& resume, bool epochs_given);

// Whether `anvil train` with these arguments trains a language model: --model gpt or
// --data text:FILE, or a resumed run that was one.
bool is_language_model_run(const TrainArgs& a, const std::string& resume);
// The language-model run: a GPT over the tokens of a text file, its tokenizer trained or read,
// windows of --context tokens, the last --test-fraction of the text held out (loss and
// perplexity reported per epoch), checkpoints and --resume as every run; at the end, a sample.
// Its directory adds tokenizer.json; model.json is {"module": "gpt", "args": config}.
int lm_train_command(TrainArgs a, const std::string& resume, bool epochs_given);

// Text from a language model: a run directory (`run`) or a model file (`model`, its tokenizer in
// the file or in `tokenizer`), continuing `prompt`.
struct GenerateArgs {
  std::string run, model, tokenizer, prompt;
  int64_t max_new_tokens = 100;
  bool greedy = false;
  double temperature = 0.8;
  int64_t top_k = 40;
  double top_p = 1.0;
  uint64_t seed = 0;
  std::string device = "cpu";
};
int generate_command(const GenerateArgs& a);

// Loss and metrics of a run directory's model on its test data (or `data`, of the same kind).
int eval_command(const std::string& run, const std::string& data, const std::string& device);
// The same for a language-model run: loss and perplexity on its held-out text, or on `data`
// (text:FILE) whole.
int lm_eval_command(const std::string& run, const std::string& data, const std::string& device);

// Predictions as CSV, from a run directory (`run`) or a model file (`model`); exactly one.
struct PredictArgs {
  std::string run, model;
  // With `run`: replaces the run's data source (its test split is predicted). With `model`:
  // fashion-mnist (the default, its test set) or csv:PATH (every row).
  std::string data;
  std::string label_column;  // CSV: a column to leave out (with `model`: "" = none)
  int64_t skip_rows = -1;    // CSV: lines before the header (-1: the run's, or 0)
  std::string output;        // "" or "-": standard output
  std::string device = "cpu";
  std::string dtype;  // with `model`: the floating dtype to run in ("" = as loaded)
};
int predict_command(const PredictArgs& a);

// A run directory or a checkpoint as a single-file model for inference.
struct ExportArgs {
  std::string run, checkpoint;   // exactly one
  std::string architecture;      // ModelBuilder JSON file, for checkpoints saved without one
  std::string output;            // default: model.anvil (or model.safetensors) beside the input
  std::string format = "anvil";  // anvil or safetensors
  std::string dtype;             // float32, float16, bfloat16, float64 ("" = as trained)
};
int export_command(const ExportArgs& a);

// Build options and devices; with a file, what the model file, checkpoint or safetensors
// file holds.
int info_command(const std::string& file);

}  // namespace anvil::tools
