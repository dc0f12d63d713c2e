// `anvil generate`: text from a trained language model, continuing a prompt.
//
//   anvil generate --run runs/fortunes --prompt "The " --max-new-tokens 200
//   anvil generate --model gpt.anvil --tokenizer tokenizer.json --prompt "Once" --greedy
#include <iostream>

#include "anvil/anvil.h"
#include "anvil/core/file.h"
#include "anvil/io/model_file.h"
#include "anvil/nn/models/generate.h"
#include "anvil/nn/models/gpt.h"
#include "anvil/text/tokenizer.h"
#include "tools/commands.h"
#include "tools/lm_run.h"

namespace anvil::tools {

int generate_command(const GenerateArgs& a) {
  ANVIL_CHECK(a.run.empty() != a.model.empty(), ValueError,
              "anvil generate: give either --run DIR or --model FILE, ",
              a.run.empty() ? "got neither" : "got both");
  io::ModelFile file = a.run.empty() ? io::load_model_file(a.model)
                                     : io::ModelFile{model_of_run(a.run, "anvil generate"), {}};
  auto* gpt = dynamic_cast<nn::GPT*>(file.model.get());
  ANVIL_CHECK(gpt != nullptr, ValueError,
              "anvil generate: ", a.run.empty() ? "'" + a.model + "'" : "run '" + a.run + "'",
              " holds no GPT (a language model trained with --model gpt)");
  // --tokenizer, else the model file's own, else the run's tokenizer.json.
  std::unique_ptr<text::Tokenizer> tok;
  if (!a.tokenizer.empty())
    tok = text::load_tokenizer(a.tokenizer);
  else if (!file.extras.tokenizer.empty())
    tok = text::parse_tokenizer(file.extras.tokenizer, a.model);
  else if (!a.run.empty())
    tok = text::load_tokenizer(a.run + "/tokenizer.json");
  ANVIL_CHECK(tok != nullptr, ValueError, "anvil generate: '", a.model,
              "' holds no tokenizer: give --tokenizer (a tokenizer file, or a directory with "
              "GPT-2's vocab.json and merges.txt)");
  ANVIL_CHECK(tok->vocab_size() <= gpt->config().vocab_size, ValueError,
              "anvil generate: the tokenizer's ", tok->vocab_size(),
              " tokens do not fit the model's vocabulary of ", gpt->config().vocab_size);
  std::vector<int64_t> ids = tok->encode(a.prompt.empty() ? "\n" : a.prompt);
  const int64_t n = int64_t(ids.size()), context = gpt->config().n_positions;
  ANVIL_CHECK(n < context, ValueError, "anvil generate: the prompt is ", n,
              " tokens, the model's context only ", context);
  Device device(a.device);
  gpt->to(device);
  nn::GenerateOptions o{.max_new_tokens = std::min(a.max_new_tokens, context - n),
                        .do_sample = !a.greedy,
                        .temperature = a.temperature,
                        .top_k = a.top_k,
                        .top_p = a.top_p,
                        .seed = a.seed};
  if (tok->has_special_token("<|endoftext|>")) o.eos_token_id = tok->special_token("<|endoftext|>");
  if (o.max_new_tokens < a.max_new_tokens)
    std::cerr << "anvil generate: " << o.max_new_tokens << " new tokens fill the context of "
              << context << "\n";
  Tensor out = nn::generate(*gpt, tensor(ids, {1, n}).to(device), o);
  std::cout << tok->decode(out.select(0, 0)) << "\n";
  return 0;
}

}  // namespace anvil::tools
