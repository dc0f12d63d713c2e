// Embedding, as torch.nn.Embedding: a lookup table of num_embeddings vectors.
#pragma once
#include <optional>

#include "anvil/nn/module.h"

namespace anvil::nn {

class Embedding : public Module {
 public:
  // weight [num_embeddings, embedding_dim] drawn from N(0, 1), with row padding_idx zeroed.
  // padding_idx may be negative (counted from the end); its row gets no gradient. Throws
  // ValueError for sizes < 1 or padding_idx outside [-num_embeddings, num_embeddings).
  Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = {});
  // Integer indices of any shape -> indices.shape() + [embedding_dim]. Throws IndexError for
  // an index outside [0, num_embeddings).
  Tensor forward(const Tensor& indices) override;
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t num_embeddings, embedding_dim;
  std::optional<int64_t> padding_idx;  // normalised to [0, num_embeddings)
  Tensor weight;
};

}  // namespace anvil::nn
