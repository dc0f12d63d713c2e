// A module with several inputs and outputs (attention, Transformer layers) against the
// torch.nn module of the same architecture, with anvil's state dict loaded into torch's
// (strictly: the keys must be torch's). Outputs, the gradients of sum_i sum(out_i * g_i) for
// random g_i with respect to the inputs and to every parameter are compared.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "anvil/anvil.h"
#include "support/check.h"

namespace anvil::test {

struct ModuleCase {
  // A torch.nn module expression, e.g. "torch.nn.MultiheadAttention(8, 2, batch_first=True)";
  // it is converted to the dtype of anvil's parameters.
  std::string ctor;
  // A Python expression with the torch module `m` and the inputs `x` (a list, x[0], x[1], ...)
  // giving a tensor or a tuple/list of tensors; None entries are dropped (as anvil's undefined
  // outputs are).
  std::string call;
  std::vector<Tensor> inputs;
  // Which inputs require grad (their gradients are compared); empty: the floating ones.
  std::vector<bool> want_grad = {};
  bool train = false;  // the mode of both modules
  double rtol = 1e-5, atol = 1e-6;
};

// Runs anvil's side on leaves made from the case's inputs (with requires_grad as wanted) and
// returns its outputs; undefined ones are dropped.
using ModuleRun = std::function<std::vector<Tensor>(const std::vector<Tensor>& x)>;

::testing::AssertionResult module_matches_torch(nn::Module& m, const ModuleCase& c,
                                                const ModuleRun& run);

}  // namespace anvil::test
