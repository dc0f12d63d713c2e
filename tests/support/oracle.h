// PyTorch as a reference for tests: a long-lived Python process (tests/support/torch_oracle.py)
// that evaluates an expression on tensors we send and returns the result and gradients.
#pragma once
#include <string>
#include <vector>

#include "anvil/anvil.h"

namespace anvil::test {

struct TorchResult {
  Tensor out;
  bool requires_grad = false;  // whether torch's result is part of an autograd graph
  std::vector<Tensor> grads;  // gradient of sum(out * grad_out) per input; undefined if none
};

class TorchOracle {
 public:
  // The process-wide oracle; starts Python ($ANVIL_PYTHON) on first use.
  static TorchOracle& get();
  // False when ANVIL_PYTHON is unset (tests then fail with a message saying so).
  bool available() const { return in_ != nullptr; }
  const std::string& why_unavailable() const { return why_; }
  // Evaluates `expr` with the inputs bound to a, b, c, ...; the inputs flagged in want_grad
  // require grad, and with grad_out defined the gradients w.r.t. them come back too. Throws anvil::Error on a Python error.
  TorchResult run(const std::string& expr, const std::vector<Tensor>& inputs,
                  const Tensor& grad_out = Tensor(), const std::vector<bool>& want_grad = {});
  // Runs Python statements (imports allowed, e.g. sklearn.metrics) with the inputs bound to
  // a, b, c, ... and, all of them, to the list `inputs`; the code must assign `out`, a tensor or a list of tensors (numbers are
  // turned into tensors). Returns them in order.
  std::vector<Tensor> run_code(const std::string& code, const std::vector<Tensor>& inputs = {});
  ~TorchOracle();

 private:
  TorchOracle();
  FILE* in_ = nullptr;   // we write requests here
  FILE* out_ = nullptr;  // and read responses here
  int pid_ = -1;
  std::string why_;
};

}  // namespace anvil::test
