// Adadelta (torch.optim.Adadelta). With g the gradient (plus weight_decay * p):
//   v = rho v + (1 - rho) g^2;   d = sqrt(u + eps) / sqrt(v + eps) * g
//   u = rho u + (1 - rho) d^2;   p -= lr d
// State: "step", "square_avg" (v), "acc_delta" (u).
#pragma once
#include "anvil/optim/optimizer.h"

namespace anvil::optim {

struct AdadeltaOptions {
  double lr = 1.0;
  double rho = 0.9;
  double eps = 1e-6;
  double weight_decay = 0;
  bool maximize = false;
};

// Throws ValueError for lr, eps or weight_decay < 0 and rho outside [0, 1].
class Adadelta : public Optimizer {
 public:
  explicit Adadelta(std::vector<Tensor> params, AdadeltaOptions options = {});
  explicit Adadelta(std::vector<ParamGroup> groups, AdadeltaOptions options = {});

 protected:
  void validate(const Options& o) const override;
  void update_group(size_t group, const std::vector<Tensor>& params) override;
};

}  // namespace anvil::optim
