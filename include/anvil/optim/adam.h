// Adam and AdamW (torch.optim.Adam, torch.optim.AdamW). With g the gradient and t the step:
//   m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2   (v_max = max(v_max, v) with
//   amsgrad, used in place of v)
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Adam adds weight_decay * p to g (L2 penalty); AdamW instead shrinks p by lr * weight_decay
// before the update (decoupled decay) and defaults weight_decay to 0.01.
// State: "step", "exp_avg", "exp_avg_sq" and, with amsgrad, "max_exp_avg_sq".
#pragma once
#include "anvil/optim/optimizer.h"

namespace anvil::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool amsgrad = false;
  bool maximize = false;
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
  bool maximize = false;
};

// Throws ValueError for lr, eps or weight_decay < 0 and for betas outside [0, 1).
class Adam : public Optimizer {
 public:
  explicit Adam(std::vector<Tensor> params, AdamOptions options = {});
  explicit Adam(std::vector<ParamGroup> groups, AdamOptions options = {});

 protected:
  Adam(std::string name, Options defaults, bool decoupled);
  void validate(const Options& o) const override;
  void update_group(size_t group, const std::vector<Tensor>& params) override;

 private:
  bool decoupled_ = false;
};

class AdamW : public Adam {
 public:
  explicit AdamW(std::vector<Tensor> params, AdamWOptions options = {});
  explicit AdamW(std::vector<ParamGroup> groups, AdamWOptions options = {});
};

}  // namespace anvil::optim
