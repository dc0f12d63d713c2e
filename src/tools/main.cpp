// The `anvil` program: train, evaluate and use models from the command line.
//
//   anvil train --model mlp --epochs 10 --output runs/mlp      (Fashion-MNIST by default)
//   anvil train --model cnn.json --data csv:table.csv --label-column price --task regression
//   anvil train --data series:sunspots.csv --window 24 --horizon 1 --column SUNACTIVITY
//                                                             (an LSTM forecasts a time series)
//   anvil train --resume runs/mlp --epochs 20                 (continue from the last epoch)
//   anvil eval --run runs/mlp
//   anvil predict --run runs/mlp --output predictions.csv
//   anvil export --run runs/mlp                               (writes runs/mlp/model.anvil)
//   anvil predict --model runs/mlp/model.anvil --data csv:new.csv
//   anvil info [FILE]
//   anvil train --model gpt --data text:/usr/share/games/fortunes/fortunes --output runs/gpt
//   anvil generate --run runs/gpt --prompt "The "
//
// Each subcommand lives in its own file (commands.h); this one only reads the command line.
#include <CLI/CLI.hpp>
#include <iostream>

#include "tools/commands.h"

using namespace anvil;

int main(int argc, char** argv) {
  CLI::App app{"anvil: train, evaluate and use neural networks"};
  app.require_subcommand(1);
  const auto floating = CLI::IsMember({"float32", "float16", "bfloat16", "float64"});

  tools::TrainArgs ta;
  auto* train = app.add_subcommand("train", "train a model and save the run to --output");
  train
      ->add_option("--model", ta.model,
                   "preset (mlp, cnn, linear, gpt; lstm, gru: the default for series:PATH) or "
                   "JSON architecture file")
      ->capture_default_str();
  train
      ->add_option("--data", ta.data.source,
                   "fashion-mnist, csv:PATH, series:PATH (a CSV time series, oldest row first) "
                   "or text:PATH (a language model's corpus)")
      ->capture_default_str();
  train->add_option("--label-column", ta.data.label_column,
                    "CSV label column (name or index; default last)");
  train->add_option("--column", ta.data.label_column,
                    "series: the column to forecast (name or index; default last)");
  train
      ->add_option("--input-columns", ta.data.input_columns,
                   "series: the columns a window holds (default: the forecast column alone)")
      ->delimiter(',');
  train->add_option("--window", ta.data.window, "series: rows of input per window")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  train->add_option("--horizon", ta.data.horizon, "series: values forecast after each window")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  train->add_option("--task", ta.data.task, "classification, regression or auto")
      ->capture_default_str();
  train
      ->add_option("--test-fraction", ta.data.test_fraction,
                   "CSV: share held out for testing (series: the last rows)")
      ->capture_default_str();
  train->add_option("--skip-rows", ta.data.skip_rows, "CSV: lines before the header to skip")
      ->capture_default_str();
  train->add_option("--epochs", ta.epochs)->capture_default_str()->check(CLI::NonNegativeNumber);
  train->add_option("--batch-size", ta.batch_size)
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  train
      ->add_option("--optimizer", ta.optimizer,
                   "sgd, adam, adamw, rmsprop, adagrad, adadelta, nadam")
      ->capture_default_str();
  train->add_option("--lr", ta.lr)->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--weight-decay", ta.weight_decay)->capture_default_str();
  train
      ->add_option("--scheduler", ta.scheduler,
                   "none, step, cosine, exponential, plateau, onecycle, warmup")
      ->capture_default_str();
  train->add_option("--warmup-epochs", ta.warmup_epochs);
  train->add_option("--loss", ta.loss, "loss name (default: cross_entropy or mse by task)");
  train->add_option("--metrics", ta.metrics, "metrics for the test set")->delimiter(',');
  train->add_option("--grad-accum", ta.grad_accum)
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  train->add_option("--clip-grad-norm", ta.clip_grad_norm)->capture_default_str();
  train->add_option("--checkpoint-every-steps", ta.checkpoint_every_steps,
                    "also save the checkpoint every N steps, so --resume continues mid-epoch")
      ->check(CLI::NonNegativeNumber);
  train->add_option("--device", ta.device, "cpu or cuda[:N]")->capture_default_str();
  train->add_option("--precision", ta.precision,
                    "fp32, or mixed precision: bf16, fp16 (with loss scaling)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  train->add_option("--seed", ta.seed)->capture_default_str();
  train->add_option("--output", ta.output, "run directory")->capture_default_str();
  train->add_flag("--quiet", ta.quiet, "no summary or progress");
  train
      ->add_option("--tokenizer", ta.lm.tokenizer,
                   "text: byte, bpe:N (trained on the corpus), or a tokenizer file / GPT-2 "
                   "directory (vocab.json + merges.txt)")
      ->capture_default_str();
  train->add_option("--context", ta.lm.context, "text: tokens per window (the GPT's n_positions)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  train->add_option("--gpt", ta.lm.gpt,
                    "text: GPTConfig fields as JSON, e.g. '{\"n_layer\": 6, \"n_embd\": 256}' "
                    "(default 4 layers, 4 heads, width 128, dropout 0.1)");
  train->add_option("--sample-tokens", ta.lm.sample_tokens,
                    "text: tokens of the sample printed after training (0: none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  std::string resume_dir;
  train->add_option("--resume", resume_dir,
                    "continue the run in DIR from DIR/checkpoint.safetensors (its run.json gives "
                    "the settings; --epochs, --device and --quiet may be given)");

  std::string eval_run, eval_data, eval_device = "cpu";
  auto* eval = app.add_subcommand("eval", "evaluate a saved run on its test data");
  eval->add_option("--run", eval_run, "run directory written by `anvil train`")->required();
  eval->add_option("--data", eval_data, "other data (same kind) to evaluate on");
  eval->add_option("--device", eval_device)->capture_default_str();

  tools::PredictArgs pa;
  auto* predict =
      app.add_subcommand("predict", "write predictions of a saved run or a model file as CSV");
  auto* p_run = predict->add_option("--run", pa.run, "run directory written by `anvil train`");
  predict->add_option("--model", pa.model, "model file written by `anvil export`")->excludes(p_run);
  predict->add_option("--data", pa.data,
                      "fashion-mnist or csv:PATH (with --run: default the run's test split; with "
                      "--model: default fashion-mnist's test set, and every CSV row)");
  predict->add_option(
      "--label-column", pa.label_column,
      "CSV label column to leave out (name or index; default: the run's, or none with --model)");
  predict->add_option("--skip-rows", pa.skip_rows, "CSV: lines before the header to skip");
  predict->add_option("--output", pa.output, "CSV file (default: standard output)");
  predict->add_option("--device", pa.device, "cpu or cuda[:N]")->capture_default_str();
  predict->add_option("--dtype", pa.dtype, "with --model: run in this floating dtype")
      ->check(floating);

  tools::ExportArgs xa;
  auto* exp = app.add_subcommand(
      "export", "write a run (or a checkpoint) as a single model file for inference");
  auto* x_run = exp->add_option("--run", xa.run,
                                "run directory written by `anvil train` (finished or interrupted)");
  exp->add_option("--checkpoint", xa.checkpoint, "a checkpoint file instead of a run")
      ->excludes(x_run);
  exp->add_option("--architecture", xa.architecture,
                  "ModelBuilder JSON, for a checkpoint saved without one");
  exp->add_option("--output", xa.output,
                  "file to write (default: model.anvil, or model.safetensors, beside the input)");
  exp->add_option(
         "--format", xa.format,
         "anvil (architecture and weights, for io::load_model and `anvil predict --model`) or "
         "safetensors (weights only, PyTorch state-dict names)")
      ->capture_default_str()
      ->check(CLI::IsMember({"anvil", "safetensors"}));
  exp->add_option("--dtype", xa.dtype, "cast the floating weights (default: as trained)")
      ->check(floating);

  tools::GenerateArgs ga;
  auto* gen = app.add_subcommand("generate", "continue a prompt with a trained GPT");
  auto* g_run = gen->add_option("--run", ga.run, "run directory of `anvil train --model gpt`");
  gen->add_option("--model", ga.model, "model file written by `anvil export`")->excludes(g_run);
  gen->add_option("--tokenizer", ga.tokenizer,
                  "tokenizer file or GPT-2 directory (default: the model file's, or the run's "
                  "tokenizer.json)");
  gen->add_option("--prompt", ga.prompt, "text to continue (default: a new line)");
  gen->add_option("--max-new-tokens", ga.max_new_tokens)
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  gen->add_flag("--greedy", ga.greedy, "the most likely token every step instead of sampling");
  gen->add_option("--temperature", ga.temperature)
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  gen->add_option("--top-k", ga.top_k, "sample from the k most likely tokens (0: all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  gen->add_option("--top-p", ga.top_p, "nucleus sampling: the most likely tokens summing to p")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  gen->add_option("--seed", ga.seed)->capture_default_str();
  gen->add_option("--device", ga.device, "cpu or cuda[:N]")->capture_default_str();

  std::string info_file;
  auto* info = app.add_subcommand("info", "build options and devices, or what FILE holds");
  info->add_option("file", info_file, "a model file, checkpoint or safetensors file");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*train) {
      ta.data.seed = ta.seed;
      if (!train->get_option("--model")->count() && ta.data.source.rfind("series:", 0) == 0)
        ta.model = "lstm";
      return tools::train_command(ta, resume_dir, train->get_option("--epochs")->count() > 0);
    }
    if (*eval) return tools::eval_command(eval_run, eval_data, eval_device);
    if (*predict) return tools::predict_command(pa);
    if (*exp) return tools::export_command(xa);
    if (*gen) return tools::generate_command(ga);
    return tools::info_command(info_file);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
