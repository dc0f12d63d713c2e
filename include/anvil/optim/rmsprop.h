// RMSprop (torch.optim.RMSprop). With g the gradient (plus weight_decay * p):
//   v = alpha v + (1 - alpha) g^2;  centered: a = alpha a + (1 - alpha) g, v~ = v - a^2
//   d = sqrt(v~) + eps;  momentum > 0: b = momentum b + g / d, p -= lr b;  else p -= lr g / d
// State: "step", "square_avg", and "momentum_buffer" (momentum > 0), "grad_avg" (centered).
#pragma once
#include "anvil/optim/optimizer.h"

namespace anvil::optim {

struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0;
  double momentum = 0;
  bool centered = false;
  bool maximize = false;
};

// Throws ValueError for lr, eps, momentum, weight_decay or alpha < 0.
class RMSprop : public Optimizer {
 public:
  explicit RMSprop(std::vector<Tensor> params, RMSpropOptions options = {});
  explicit RMSprop(std::vector<ParamGroup> groups, RMSpropOptions options = {});

 protected:
  void validate(const Options& o) const override;
  void update_group(size_t group, const std::vector<Tensor>& params) override;
};

}  // namespace anvil::optim
