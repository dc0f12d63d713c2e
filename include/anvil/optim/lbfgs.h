// L-BFGS (torch.optim.LBFGS, a port of its algorithm and of its strong-Wolfe line search).
//
// Works on all parameters as one flat vector (a single parameter group). step(closure) runs up
// to max_iter iterations, each evaluating the closure (which must zero the gradients,
// recompute the loss, call backward and return the loss) one or more times; it returns the
// loss of the first evaluation. Without a line search each iteration moves by lr along the
// quasi-Newton direction (the first by min(1, 1 / |g|_1) lr); with line_search_fn
// "strong_wolfe" the step length satisfies the strong Wolfe conditions (c1 = 1e-4, c2 = 0.9).
// Stops early when max |g| <= tolerance_grad, when the loss or the step changes by less than
// tolerance_change, or after max_eval closure calls (default max_iter * 5 / 4).
//
// Memory: keeps history_size pairs of flat vectors. State (under the first parameter):
// "func_evals", "n_iter", "d", "t", "H_diag", "prev_flat_grad", "prev_loss" and the history
// "old_dirs.<k>", "old_stps.<k>", "ro.<k>".
//
// Unlike the other optimizers it is not fused and cannot be captured in a CUDA graph: each
// step evaluates the closure and decides its line search on the host.
#pragma once
#include <optional>
#include <string>

#include "anvil/optim/optimizer.h"

namespace anvil::optim {

struct LBFGSOptions {
  double lr = 1;
  int64_t max_iter = 20;
  std::optional<int64_t> max_eval = std::nullopt;  // default max_iter * 5 / 4
  double tolerance_grad = 1e-7;
  double tolerance_change = 1e-9;
  int64_t history_size = 100;
  std::string line_search_fn = "";  // "" (none) or "strong_wolfe"
  bool maximize = false;
};

// Throws ValueError for lr < 0, max_iter, max_eval or history_size < 1, or an unknown
// line_search_fn.
class LBFGS : public Optimizer {
 public:
  explicit LBFGS(std::vector<Tensor> params, LBFGSOptions options = {});

  // L-BFGS needs the closure: step() throws ValueError.
  void step() override;
  Tensor step(const std::function<Tensor()>& closure) override;

 protected:
  void validate(const Options& o) const override;
  void update_group(size_t group, const std::vector<Tensor>& params) override;

 private:
  Tensor gather_flat_grad() const;
  void add_grad(double step_size, const Tensor& update);
  std::string line_search_fn_;
};

}  // namespace anvil::optim
