// Layers that turn a sequence of vectors into one vector, for classifiers over Transformer
// encoders: the mean over the positions, or one position (BERT's first, [CLS], token).
#pragma once
#include "anvil/nn/module.h"

namespace anvil::nn {

// The mean over `dim`: [N, T, D] -> [N, D] with the default dim 1 (torch's x.mean(dim=1)).
class MeanPool : public Module {
 public:
  explicit MeanPool(int64_t dim = 1) : dim(dim) {}
  // Throws IndexError for a dim out of range, DTypeError for a non-floating x.
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t dim;
};

// One position along `dim`: [N, T, D] -> [N, D], x[:, index] (negative counts from the end:
// -1 is the last token). A view of x.
class SelectToken : public Module {
 public:
  explicit SelectToken(int64_t index = 0, int64_t dim = 1) : index(index), dim(dim) {}
  // Throws IndexError for a dim or index out of range.
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t index, dim;
};

}  // namespace anvil::nn
