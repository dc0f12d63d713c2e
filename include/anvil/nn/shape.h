// Layers that only change the shape: Flatten and Reshape.
#pragma once
#include "anvil/core/shape.h"
#include "anvil/nn/module.h"

namespace anvil::nn {

// Flattens dims start_dim..end_dim into one, as torch.nn.Flatten (defaults keep the batch).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1)
      : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override;  // throws IndexError for dims out of range
  std::string extra_repr() const override;
  int64_t start_dim, end_dim;
};

// Reshapes every sample, keeping the batch dim, as Keras's Reshape: Reshape({1, 28, 28})
// turns [N, 784] into [N, 1, 28, 28]. One entry may be -1 (inferred).
class Reshape : public Module {
 public:
  explicit Reshape(Shape shape) : shape(std::move(shape)) {}
  // Throws ShapeError when x [N, ...] has no batch dim or its samples do not fit `shape`.
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Shape shape;  // without the batch dim
};

}  // namespace anvil::nn
