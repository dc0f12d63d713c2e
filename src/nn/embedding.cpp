#include "anvil/nn/embedding.h"

#include "anvil/autograd/grad_mode.h"
#include "anvil/nn/init.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/indexing.h"
#include "nn/repr.h"

namespace anvil::nn {

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim,
                     std::optional<int64_t> padding_idx)
    : num_embeddings(num_embeddings), embedding_dim(embedding_dim), padding_idx(padding_idx) {
  ANVIL_CHECK(num_embeddings > 0 && embedding_dim > 0, ValueError,
              "Embedding: expected positive num_embeddings and embedding_dim, got ", num_embeddings,
              " and ", embedding_dim);
  if (padding_idx) {
    ANVIL_CHECK(*padding_idx >= -num_embeddings && *padding_idx < num_embeddings, ValueError,
                "Embedding: expected padding_idx in [", -num_embeddings, ", ", num_embeddings,
                "), got ", *padding_idx);
    if (*padding_idx < 0) this->padding_idx = *padding_idx + num_embeddings;
  }
  weight = register_parameter("weight", empty({num_embeddings, embedding_dim}));
  reset_parameters();
}

void Embedding::reset_parameters() {
  init::normal_(weight);
  if (padding_idx) {
    NoGradGuard no_grad;
    weight.select(0, *padding_idx).zero_();
  }
}

Tensor Embedding::forward(const Tensor& indices) {
  ANVIL_CHECK(indices.defined() && !indices.is_floating_point(), DTypeError,
              "Embedding::forward: expected integer indices (int64 or int32), got ",
              indices.defined() ? dtype_name(indices.dtype()) : "an undefined tensor");
  return embedding(weight, indices, padding_idx.value_or(-1));
}

std::string Embedding::extra_repr() const {
  std::string s = detail::cat(num_embeddings, ", ", embedding_dim);
  if (padding_idx) s += detail::cat(", padding_idx=", *padding_idx);
  return s;
}

}  // namespace anvil::nn
