// Position information for Transformers: a learned table, the fixed sinusoids of "Attention Is
// All You Need" (the PyTorch tutorial's PositionalEncoding) and rotary embeddings (RoPE).
//
//   nn::SinusoidalPositionalEncoding pe(512);       // x [T, N, 512] -> x + pe[:T]
//   nn::LearnedPositionalEmbedding wpe(1024, 768, /*batch_first=*/true);  // GPT-2's wpe
//   nn::RotaryEmbedding rope(64);                   // head_dim 64
//   auto [q_rot, k_rot] = rope.apply(q, k);         // q, k [B, H, T, 64]
//
// The first two add their table to the input and return the sum. Their layout is the
// Transformer modules': seq-first [T, N, D] by default, [N, T, D] with batch_first, or
// unbatched [T, D]; `offset` shifts the positions (offset + t for step t), for decoding one
// step at a time.
#pragma once
#include <vector>

#include "anvil/nn/dropout.h"
#include "anvil/nn/module.h"
#include "anvil/ops/rotary.h"

namespace anvil::nn {

// A trained position table, as nn.Embedding(max_len, embedding_dim) over positions 0, 1, ...:
// parameter `weight` [max_len, embedding_dim] drawn from N(0, 1) (Embedding's init; the state
// dict key is GPT-2's wpe.weight when registered as "wpe").
class LearnedPositionalEmbedding : public Module {
 public:
  // Throws ValueError for sizes below 1.
  LearnedPositionalEmbedding(int64_t max_len, int64_t embedding_dim, bool batch_first = false);
  // x + weight[offset : offset + T] (broadcast over the batch). Throws ShapeError for an x that
  // is not [T, N, D] / [N, T, D] / [T, D] with D = embedding_dim, IndexError when positions
  // offset .. offset + T - 1 do not fit in max_len or offset < 0.
  Tensor forward(const Tensor& x, int64_t offset);
  Tensor forward(const Tensor& x) override { return forward(x, 0); }
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t max_len, embedding_dim;
  bool batch_first;
  Tensor weight;
};

// The fixed encoding pe[t, 2i] = sin(t / 10000^(2i / d_model)), pe[t, 2i + 1] = cos(same), in
// float32, as the PyTorch tutorial's PositionalEncoding builds it (buffer `pe`
// [max_len, 1, d_model], so its state dict loads 1:1; an odd d_model keeps the last sine
// column), followed by its Dropout child `dropout`.
class SinusoidalPositionalEncoding : public Module {
 public:
  // Throws ValueError for sizes below 1 or dropout outside [0, 1].
  explicit SinusoidalPositionalEncoding(int64_t d_model, int64_t max_len = 5000,
                                        double dropout = 0.0, bool batch_first = false);
  // dropout(x + pe[offset : offset + T]) (pe converted to x's dtype). Throws as
  // LearnedPositionalEmbedding::forward (for max_len and d_model).
  Tensor forward(const Tensor& x, int64_t offset);
  Tensor forward(const Tensor& x) override { return forward(x, 0); }
  std::string extra_repr() const override;

  int64_t d_model, max_len;
  bool batch_first;
  Tensor pe;  // [max_len, 1, d_model] float32
  std::shared_ptr<Dropout> dropout;
};

// Rotary position embedding in Hugging Face's convention (LlamaRotaryEmbedding and
// apply_rotary_pos_emb): the cos/sin tables of rotary_cos_sin(max_position, dim, base) and
// apply_rotary. No parameters or buffers (Hugging Face's inv_freq is not persistent, so state
// dicts have no key for it); the tables are built on the first call for each device and dtype
// and kept (build them before capturing a CUDA graph: the first call uploads positions).
class RotaryEmbedding : public Module {
 public:
  struct Rotated {
    Tensor q, k;
  };
  // dim: the rotated features per head (even). Throws ValueError for a dim that is not
  // positive and even, max_position < 1 or base <= 0.
  explicit RotaryEmbedding(int64_t dim, int64_t max_position = 2048, double base = 10000.0);
  // q and k [..., T, dim] (typically [B, H, T, dim], k may have fewer heads) rotated by
  // positions offset .. offset + T - 1. Throws ShapeError for a last dim other than dim or q and
  // k of different T, IndexError when the positions do not fit in max_position or offset < 0.
  Rotated apply(const Tensor& q, const Tensor& k, int64_t offset = 0);
  // One tensor rotated the same way.
  Tensor rotate(const Tensor& x, int64_t offset = 0);
  Tensor forward(const Tensor& x) override { return rotate(x, 0); }
  // The tables for positions offset .. offset + seq_len - 1: cos and sin [seq_len, dim] in
  // options' dtype and device.
  RotaryCosSin cos_sin(int64_t seq_len, int64_t offset = 0, TensorOptions options = {});
  std::string extra_repr() const override;

  int64_t dim, max_position;
  double base;

 private:
  std::vector<RotaryCosSin> cache_;  // [max_position, dim] per device and dtype
};

}  // namespace anvil::nn
