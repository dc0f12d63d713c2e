// NAdam: Adam with Nesterov momentum (torch.optim.NAdam). With g the gradient (plus
// weight_decay * p, or decoupled decay of p like AdamW) and t the step:
//   mu_t = beta1 (1 - 0.5 * 0.96^(t momentum_decay)),  P_t = prod_{i<=t} mu_i
//   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2,  d = sqrt(v / (1 - beta2^t)) + eps
//   p -= lr (1 - mu_t) / (1 - P_t) g / d + lr mu_{t+1} / (1 - P_t mu_{t+1}) m / d
// State: "step", "mu_product", "exp_avg", "exp_avg_sq".
#pragma once
#include "anvil/optim/optimizer.h"

namespace anvil::optim {

struct NAdamOptions {
  double lr = 2e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  double momentum_decay = 4e-3;
  bool decoupled_weight_decay = false;
  bool maximize = false;
};

// Throws ValueError for lr, eps, weight_decay or momentum_decay < 0 and betas outside [0, 1).
class NAdam : public Optimizer {
 public:
  explicit NAdam(std::vector<Tensor> params, NAdamOptions options = {});
  explicit NAdam(std::vector<ParamGroup> groups, NAdamOptions options = {});

 protected:
  void validate(const Options& o) const override;
  void update_group(size_t group, const std::vector<Tensor>& params) override;
};

}  // namespace anvil::optim
