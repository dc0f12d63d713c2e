#include "anvil/nn/models/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "anvil/autograd/grad_mode.h"
#include "anvil/core/generator.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/join.h"
#include "anvil/ops/reduction.h"

namespace anvil::nn {
namespace {

// Hugging Face's logits warpers on one row of float32 logits: temperature, then top-k (values
// below the k-th largest removed, ties kept), then top-p (in ascending order, tokens whose
// cumulative probability is <= 1 - top_p removed, the most likely always kept).
void warp(std::vector<float>& row, const GenerateOptions& o) {
  for (float& v : row) v = float(double(v) / o.temperature);
  const int64_t V = int64_t(row.size());
  if (o.top_k > 0 && o.top_k < V) {
    std::vector<float> sorted = row;
    std::nth_element(sorted.begin(), sorted.begin() + (o.top_k - 1), sorted.end(),
                     std::greater<float>());
    const float kth = sorted[size_t(o.top_k - 1)];
    for (float& v : row)
      if (v < kth) v = -INFINITY;
  }
  if (o.top_p < 1.0) {
    std::vector<int64_t> order(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return row[size_t(a)] < row[size_t(b)]; });
    const double mx = row[size_t(order.back())];
    double total = 0;
    for (float v : row) total += std::exp(double(v) - mx);
    double cumulative = 0;
    for (int64_t i = 0; i + 1 < V; ++i) {  // the last (most likely) stays
      float& v = row[size_t(order[size_t(i)])];
      cumulative += std::exp(double(v) - mx) / total;
      if (cumulative <= 1.0 - o.top_p) v = -INFINITY;
    }
  }
}

// One token per row of logits [B, V]: argmax, or a draw from the warped distribution.
Tensor pick(const Tensor& logits, const GenerateOptions& o, Generator* gen) {
  if (!o.do_sample) return argmax(logits, -1);
  const int64_t B = logits.size(0), V = logits.size(1);
  std::vector<float> all = logits.to(kCPU, kFloat32).contiguous().to_vector<float>();
  std::vector<double> u = rand({B}, kFloat64, gen).to_vector<double>();
  std::vector<int64_t> tokens(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    std::vector<float> row(all.begin() + b * V, all.begin() + (b + 1) * V);
    warp(row, o);
    const double mx = *std::max_element(row.begin(), row.end());
    double total = 0;
    for (float v : row) total += std::exp(double(v) - mx);
    double target = u[size_t(b)] * total, acc = 0;
    int64_t chosen = int64_t(std::max_element(row.begin(), row.end()) - row.begin());
    for (int64_t i = 0; i < V; ++i) {
      const double p = std::exp(double(row[size_t(i)]) - mx);
      if (p == 0) continue;
      acc += p;
      chosen = i;
      if (acc > target) break;
    }
    tokens[size_t(b)] = chosen;
  }
  return tensor(tokens, {B}).to(logits.device());
}

}  // namespace

Tensor generate(GPT& model, const Tensor& input_ids, const GenerateOptions& o) {
  ANVIL_CHECK(
      input_ids.defined() && input_ids.dim() == 2 && input_ids.size(1) >= 1, ShapeError,
      "generate: expected input_ids [batch, length >= 1], got ",
      input_ids.defined() ? "shape " + to_string(input_ids.shape()) : "an undefined tensor");
  const int64_t B = input_ids.size(0), T0 = input_ids.size(1);
  const int64_t context = model.config().n_positions;
  ANVIL_CHECK(o.max_new_tokens >= 0 && T0 + o.max_new_tokens <= context, ValueError,
              "generate: a prompt of ", T0, " tokens and max_new_tokens = ", o.max_new_tokens,
              " exceed the model's context of ", context, " tokens");
  ANVIL_CHECK(o.temperature > 0 && o.top_k >= 0 && o.top_p > 0 && o.top_p <= 1, ValueError,
              "generate: expected temperature > 0, top_k >= 0 and top_p in (0, 1], got ",
              o.temperature, ", ", o.top_k, " and ", o.top_p);
  if (o.max_new_tokens == 0) return input_ids.to(kInt64);
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  Generator seeded(o.seed.value_or(0));
  Generator* gen = o.seed ? &seeded : nullptr;

  const Tensor ids = input_ids.to(kInt64);
  KVCache cache = model.make_cache(B, T0 + o.max_new_tokens);
  Tensor next = model.forward(ids, cache).select(1, T0 - 1);  // [B, V]
  std::vector<Tensor> pieces{ids};
  Tensor finished = zeros({B}, TensorOptions(kBool).device(ids.device()));
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    Tensor token = pick(next, o, gen);
    if (o.eos_token_id) {
      token = where(finished, full({B}, double(*o.eos_token_id), token.options()), token);
      finished = logical_or(finished, eq(token, double(*o.eos_token_id)));
    }
    pieces.push_back(token.unsqueeze(1));
    if (o.eos_token_id && sum(finished.to(kInt64)).item<int64_t>() == B) break;
    if (i + 1 < o.max_new_tokens) next = model.forward(token.unsqueeze(1), cache).select(1, 0);
  }
  model.train(was_training);
  return cat(pieces, 1);
}

}  // namespace anvil::nn
