// `anvil train --model gpt --data text:FILE`: a GPT language model trained on a text file.
//
// The run directory holds what the classifier runs hold (run.json, model.json, history,
// checkpoint.safetensors, weights.safetensors) and tokenizer.json; model.json is the
// registered-module architecture {"module": "gpt", "args": GPTConfig}, so `anvil export` and
// io::load_model rebuild the model, and `anvil generate --run DIR` continues a prompt.
#include <filesystem>
#include <iostream>

#include "anvil/anvil.h"
#include "anvil/core/file.h"
#include "anvil/io/model_file.h"
#include "anvil/nn/models/generate.h"
#include "anvil/nn/models/gpt.h"
#include "anvil/text/bpe_tokenizer.h"
#include "anvil/text/byte_tokenizer.h"
#include "anvil/text/token_windows.h"
#include "tools/commands.h"
#include "tools/lm_run.h"
#include "tools/train_parts.h"

namespace anvil::tools {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kEndOfText = "<|endoftext|>";

// --tokenizer: "byte", "bpe:N" (trained on the corpus) or a tokenizer file or GPT-2 directory.
std::unique_ptr<text::Tokenizer> make_tokenizer(const std::string& spec, std::string_view corpus,
                                                bool quiet) {
  if (spec == "byte")
    return std::make_unique<text::ByteTokenizer>(std::vector<std::string>{kEndOfText});
  if (spec.rfind("bpe:", 0) == 0) {
    int64_t n = 0;
    try {
      size_t used = 0;
      n = std::stoll(spec.substr(4), &used);
      if (used != spec.size() - 4) n = 0;
    } catch (const std::exception&) {
    }
    ANVIL_CHECK(n > 257, ValueError,
                "anvil train: --tokenizer bpe:N needs a vocabulary size N > 257, got '", spec, "'");
    if (!quiet)
      std::cout << "training a " << n << "-token BPE tokenizer on " << corpus.size() << " bytes\n";
    return std::make_unique<text::BPETokenizer>(
        text::BPETokenizer::train(corpus, n, {.special_tokens = {kEndOfText}}));
  }
  return text::load_tokenizer(spec);
}

// GPTConfig over the CLI's defaults: a small model a CPU trains in minutes.
nn::GPTConfig make_config(const LanguageModelArgs& lm, int64_t vocab_size) {
  json j = {{"n_embd", 128}, {"n_layer", 4}, {"n_head", 4}, {"dropout", 0.1}};
  if (!lm.gpt.empty()) {
    json over;
    try {
      over = json::parse(lm.gpt);
    } catch (const json::exception& e) {
      throw ValueError(
          detail::cat("anvil train: --gpt must be a JSON object of GPTConfig fields, got '", lm.gpt,
                      "': ", e.what()));
    }
    ANVIL_CHECK(over.is_object(), ValueError,
                "anvil train: --gpt must be a JSON object of GPTConfig fields, got '", lm.gpt, "'");
    j.update(over);
  }
  j["vocab_size"] = vocab_size;
  j["n_positions"] = lm.context;
  return nn::GPTConfig::from_json(j);
}

}  // namespace

bool is_language_model_run(const TrainArgs& a, const std::string& resume) {
  if (!resume.empty()) return read_run_json(resume).contains("language_model");
  return a.model == "gpt" || a.data.source.rfind(kTextPrefix, 0) == 0;
}

int lm_train_command(TrainArgs a, const std::string& resume, bool epochs_given) {
  if (!resume.empty())
    a = args_of_run(resume, a, epochs_given);
  else
    a.schedule_epochs = a.epochs;
  ANVIL_CHECK(a.model == "gpt", ValueError,
              "anvil train: text data trains a language model: give --model gpt (got --model '",
              a.model, "')");
  ANVIL_CHECK(a.lm.context > 1, ValueError, "anvil train: --context must be at least 2, got ",
              a.lm.context);
  const std::string path = text_path(a.data, "anvil train --model gpt");
  const std::string ckpt_path = a.output + "/checkpoint.safetensors";
  manual_seed(a.seed);
  const std::string corpus = text::load_text(path);
  std::unique_ptr<text::Tokenizer> tok = make_tokenizer(a.lm.tokenizer, corpus, a.quiet);
  nn::GPTConfig config = make_config(a.lm, tok->vocab_size());
  text::TextSplit split = text::token_windows(
      corpus, *tok, {.block_size = a.lm.context, .val_fraction = a.data.test_fraction});
  auto model = std::make_shared<nn::GPT>(config);
  if (!a.quiet)
    std::cout << "GPT " << config.to_json().dump() << ": " << model->num_parameters()
              << " parameters; " << split.train->tokens().numel() << " training tokens in "
              << split.train->size() << " windows of " << a.lm.context << "\n";

  std::shared_ptr<optim::Optimizer> opt = make_run_optimizer(a, model->parameters());
  const std::string loss_name = a.loss.empty() ? "cross_entropy" : a.loss;
  train::TrainerOptions to = run_trainer_options(a);
  to.metrics = a.metrics;  // none by default: loss and perplexity
  train::Trainer trainer(model, opt, nn::make_loss(loss_name), to);
  const io::Architecture arch("gpt", config.to_json());
  trainer.set_architecture(arch.dump());
  data::DataLoader train_loader(split.train, {.batch_size = a.batch_size,
                                              .shuffle = true,
                                              .seed = a.seed,
                                              .pin_memory = to.device.is_cuda()});
  std::optional<data::DataLoader> val_loader;
  if (split.val) val_loader.emplace(split.val, data::DataLoaderOptions{.batch_size = a.batch_size});
  set_run_scheduler(trainer, a, *opt, train_loader.size());
  fs::create_directories(a.output);
  if (!resume.empty()) {
    trainer.load_checkpoint(ckpt_path);
    if (!a.quiet)
      std::cout << "resuming " << resume << " after epoch " << trainer.epoch() << " of " << a.epochs
                << "\n";
  } else {
    write_file_atomic(a.output + "/model.json", arch.dump() + "\n");
    tok->save(a.output + "/tokenizer.json");
  }
  json run = run_json(
      a, loss_name,
      {{"source", a.data.source}, {"test_fraction", a.data.test_fraction}, {"seed", a.data.seed}});
  run["language_model"] = {
      {"context", a.lm.context}, {"gpt", config.to_json()}, {"sample_tokens", a.lm.sample_tokens}};
  write_file_atomic(a.output + "/run.json", run.dump(2) + "\n");
  add_run_callbacks(trainer, a, ckpt_path);
  trainer.fit_to(train_loader, a.epochs, val_loader ? &*val_loader : nullptr);

  model->to(kCPU);
  io::save_safetensors(model->state_dict(), a.output + "/weights.safetensors", {{"format", "pt"}});
  const auto& h = trainer.history();
  std::cout << "validation";
  if (!h.empty())
    for (const auto& [k, v] : h.epochs().back().values)
      if (k.rfind("val_", 0) == 0) std::cout << "  " << k.substr(4) << " " << v;
  std::cout << "\n";
  if (a.lm.sample_tokens > 0) {
    // A sample continuing the first line of the text, as nanoGPT's sample.py prints one.
    std::string prompt = corpus.substr(0, std::min(corpus.find('\n'), size_t(40)));
    std::vector<int64_t> ids = tok->encode(prompt.empty() ? "\n" : prompt);
    const int64_t room = config.n_positions - int64_t(ids.size());
    if (room > 0 && !ids.empty()) {
      nn::GenerateOptions g{.max_new_tokens = std::min(a.lm.sample_tokens, room),
                            .do_sample = true,
                            .temperature = 0.8,
                            .top_k = 40,
                            .seed = a.seed};
      Tensor out = nn::generate(*model, tensor(ids, {1, int64_t(ids.size())}), g);
      std::cout << "sample:\n" << tok->decode(out.select(0, 0)) << "\n";
    }
  }
  std::cout << "saved to " << a.output << "\n";
  return 0;
}

}  // namespace anvil::tools
