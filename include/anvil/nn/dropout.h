// Dropout, as torch.nn.Dropout: in training mode each element is zeroed with probability p
// and the rest are scaled by 1 / (1 - p); in eval mode it is the identity.
#pragma once
#include "anvil/nn/module.h"

namespace anvil::nn {

class Dropout : public Module {
 public:
  // Throws ValueError unless 0 <= p <= 1.
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;  // draws from the device's default generator
  std::string extra_repr() const override;
  double p;
};

}  // namespace anvil::nn
