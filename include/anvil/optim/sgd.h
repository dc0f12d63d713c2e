// Stochastic gradient descent with momentum, dampening, weight decay and Nesterov momentum
// (torch.optim.SGD). With g the gradient (plus weight_decay * p):
//   b = g on the first step, else momentum * b + (1 - dampening) * g
//   p -= lr * (nesterov ? g + momentum * b : b)        (b = g when momentum is 0)
// State: "momentum_buffer" (when momentum != 0).
#pragma once
#include "anvil/optim/optimizer.h"

namespace anvil::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
  bool maximize = false;
};

// Throws ValueError for lr, momentum or weight_decay < 0, and for nesterov without momentum or
// with dampening.
class SGD : public Optimizer {
 public:
  explicit SGD(std::vector<Tensor> params, SGDOptions options = {});
  explicit SGD(std::vector<ParamGroup> groups, SGDOptions options = {});

 protected:
  void validate(const Options& o) const override;
  void update_group(size_t group, const std::vector<Tensor>& params) override;
};

}  // namespace anvil::optim
