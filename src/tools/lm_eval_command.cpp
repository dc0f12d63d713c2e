// `anvil eval --run DIR` for a language-model run: the loss and perplexity of its GPT on the
// validation part of its text (or on the whole of --data text:FILE).
#include <iostream>

#include "anvil/anvil.h"
#include "anvil/text/token_windows.h"
#include "anvil/text/tokenizer.h"
#include "tools/commands.h"
#include "tools/lm_run.h"

namespace anvil::tools {

int lm_eval_command(const std::string& dir, const std::string& data, const std::string& device) {
  const std::string cmd = "anvil eval";
  nlohmann::json run = read_run_json(dir);
  DataSpec spec = data_spec_from_json(run.at("data"));
  const bool other = !data.empty();
  if (other) spec.source = data;
  const std::string path = text_path(spec, cmd);
  auto tok = text::load_tokenizer(dir + "/tokenizer.json");
  const int64_t context = run.at("language_model").at("context").get<int64_t>();
  // The run's own text: its held-out end; another text: all of it.
  const std::string corpus = text::load_text(path);
  std::shared_ptr<data::Dataset> windows;
  if (other) {
    windows = text::token_windows(corpus, *tok, {.block_size = context, .val_fraction = 0}).train;
  } else {
    ANVIL_CHECK(spec.test_fraction > 0, ValueError, cmd, ": run '", dir,
                "' held no text out (--test-fraction 0): give --data text:FILE to evaluate on");
    windows = text::token_windows(corpus, *tok,
                                  {.block_size = context, .val_fraction = spec.test_fraction})
                  .val;
  }
  auto model = model_of_run(dir, cmd);
  train::TrainerOptions to;
  to.device = Device(device);
  to.metrics = {};
  // The optimizer is unused by evaluate; SGD with lr 0 keeps the interface honest.
  train::Trainer t(model, optim::make_optimizer("sgd", model->parameters(), 0.0),
                   nn::make_loss(run.value("loss", std::string("cross_entropy"))), to);
  data::DataLoader loader(windows, {.batch_size = 64});
  auto logs = t.evaluate(loader);
  std::cout << "windows " << windows->size() << " of " << context << " tokens";
  for (const auto& [k, v] : logs) std::cout << "  " << k << " " << v;
  std::cout << "\n";
  return 0;
}

}  // namespace anvil::tools
