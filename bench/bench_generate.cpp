// Times text generation with nn::generate: GPT-2 124M (random weights, bfloat16) decoding
// greedily through its key/value cache from a 32-token prompt, 256 new tokens, batch 1 and 16.
// bench_generate_torch.py times Hugging Face's GPT2LMHeadModel.generate on the same setup.
//
//   build/bench/bench_generate [--new=256] [--runs=3] [--device=cuda]
//
// Each run generates once after one warm-up run; the median wall time over the runs gives
// the new tokens per second (batch x new tokens / time). One JSON line per batch size.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "anvil/anvil.h"
#include "anvil/nn/models/generate.h"
#include "anvil/nn/models/gpt.h"

using namespace anvil;

int main(int argc, char** argv) {
  int64_t new_tokens = 256, runs = 3;
  std::string device = "cuda";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--new=", 0) == 0) new_tokens = std::stoll(a.substr(6));
    else if (a.rfind("--runs=", 0) == 0) runs = std::stoll(a.substr(7));
    else if (a.rfind("--device=", 0) == 0) device = a.substr(9);
    else {
      std::fprintf(stderr, "usage: %s [--new=256] [--runs=3] [--device=cuda]\n", argv[0]);
      return 2;
    }
  }
  const Device d(device);
  manual_seed(0);
  nn::GPT model(nn::GPTConfig{.dropout = 0});
  model.to(kBFloat16);
  model.to(d);
  model.eval();
  for (int64_t batch : {1, 16}) {
    Tensor prompt = randint(0, 50257, {batch, 32}, TensorOptions(kInt64).device(d));
    auto once = [&] {
      const auto t0 = std::chrono::steady_clock::now();
      Tensor out = nn::generate(model, prompt, {.max_new_tokens = new_tokens});
      out.cpu();  // waits for the device
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    once();
    std::vector<double> s;
    for (int64_t r = 0; r < runs; ++r) s.push_back(once());
    std::sort(s.begin(), s.end());
    const double t = s[s.size() / 2];
    std::printf(
        "{\"impl\": \"anvil\", \"batch\": %lld, \"prompt\": 32, \"new_tokens\": %lld, "
        "\"dtype\": \"bfloat16\", \"seconds\": %.4f, \"tokens_per_s\": %.1f, \"ms_per_step\": %.3f}\n",
        (long long)batch, (long long)new_tokens, t, double(batch * new_tokens) / t,
        1e3 * t / double(new_tokens));
    std::fflush(stdout);
  }
  return 0;
}
