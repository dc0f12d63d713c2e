// Text generation with a GPT, as Hugging Face's model.generate: greedy decoding or sampling
// (temperature, top-k, top-p), one position at a time through the key/value cache, so each new
// token costs one position of attention instead of the whole sequence again.
//
//   nn::GenerateOptions o{.max_new_tokens = 100, .do_sample = true, .top_k = 40, .seed = 1};
//   Tensor out = nn::generate(model, prompt_ids, o);   // [B, T0] -> [B, T0 + 100]
#pragma once
#include <optional>

#include "anvil/nn/models/gpt.h"

namespace anvil::nn {

struct GenerateOptions {
  int64_t max_new_tokens = 20;
  // false: the most likely token every step (greedy; ties go to the lowest id, as argmax);
  // true: a draw from softmax(logits / temperature) after the top-k and top-p filters.
  bool do_sample = false;
  double temperature = 1.0;  // > 0
  int64_t top_k = 50;        // keep the k most likely tokens (0: all), as Hugging Face's default
  double top_p = 1.0;        // keep the most likely tokens whose probabilities sum to top_p
  // Sampling draws from a generator seeded with this, or from the CPU's default generator.
  std::optional<uint64_t> seed = std::nullopt;
  // A sequence that emits it is finished: it gets eos_token_id from then on, and generation
  // stops early once every sequence has finished.
  std::optional<int64_t> eos_token_id = std::nullopt;
};

// input_ids [B, T0] (int64, on the model's device, T0 >= 1) -> [B, T0 + n] int64 with n <=
// max_new_tokens new tokens after the prompt. Runs in evaluation mode without autograd (the
// model's mode is restored). Throws ValueError when T0 + max_new_tokens exceeds the context
// (n_positions) or an option is out of range, ShapeError for input_ids of another rank.
Tensor generate(GPT& model, const Tensor& input_ids, const GenerateOptions& options = {});

}  // namespace anvil::nn
