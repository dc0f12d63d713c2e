// Linear (Keras: Dense): y = x W^T + b, as torch.nn.Linear.
#pragma once
#include "anvil/nn/module.h"
#include "anvil/ops/linear_act.h"

namespace anvil::nn {

class Linear : public Module {
 public:
  // weight [out_features, in_features] and bias [out_features] (when `bias`), initialised as
  // PyTorch does: weight kaiming_uniform_(a = sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)), and
  // bias U(-1/sqrt(in), 1/sqrt(in)). Throws ValueError for negative sizes.
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  // x [..., in_features] -> [..., out_features]. Throws ShapeError on a feature mismatch.
  Tensor forward(const Tensor& x) override;
  // act(forward(x)) as one op (linear_act: the bias and activation fused into the product on
  // CUDA). Sequential runs a Linear followed by a ReLU or GELU("tanh") through it.
  Tensor forward_act(const Tensor& x, Activation act);
  // Draws the initial values again.
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t in_features, out_features;
  Tensor weight, bias;  // bias undefined without one
};

using Dense = Linear;

}  // namespace anvil::nn
