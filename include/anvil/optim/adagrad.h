// Adagrad (torch.optim.Adagrad). With g the gradient (plus weight_decay * p) and t the step:
//   s += g^2;   p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)
// State: "step", "sum" (starting at initial_accumulator_value).
#pragma once
#include "anvil/optim/optimizer.h"

namespace anvil::optim {

struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0;
  double weight_decay = 0;
  double initial_accumulator_value = 0;
  double eps = 1e-10;
  bool maximize = false;
};

// Throws ValueError for lr, lr_decay, weight_decay, initial_accumulator_value or eps < 0.
// The state is created for every parameter at construction, as in PyTorch.
class Adagrad : public Optimizer {
 public:
  explicit Adagrad(std::vector<Tensor> params, AdagradOptions options = {});
  explicit Adagrad(std::vector<ParamGroup> groups, AdagradOptions options = {});

 protected:
  void validate(const Options& o) const override;
  void update_group(size_t group, const std::vector<Tensor>& params) override;
};

}  // namespace anvil::optim
