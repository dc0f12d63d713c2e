// Assertions shared by the tests: closeness with a useful diff, gradient checks by finite
// differences, and agreement with PyTorch.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "anvil/anvil.h"

namespace anvil::test {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// |actual - expected| <= atol + rtol * |expected| everywhere, same shape; NaN matches NaN.
// The failure message names the worst element.
::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected,
                                     double rtol = 1e-5, double atol = 1e-6);

// Random float64 values in [lo, hi) from a fixed seed, converted to dtype.
Tensor uniform(const Shape& shape, uint64_t seed, double lo = -1, double hi = 1,
               DType dtype = kFloat64);

// Compares the gradients autograd gives for f at `inputs` (float64; those with
// requires_grad set are checked) with central differences, for two random projections of the
// output: <v, f(x + eps e_i)> - <v, f(x - eps e_i)> over 2 eps against (J^T v)_i.
::testing::AssertionResult gradcheck(const Fn& f, const std::vector<Tensor>& inputs,
                                     double eps = 1e-6, double atol = 1e-5, double rtol = 1e-4);

struct TorchTolerance {
  double rtol = 1e-5, atol = 1e-6;
  bool grads = true;  // also compare gradients of the floating inputs
};

// Runs f on anvil leaves made from `inputs` (which may be non-contiguous views; floating
// ones get requires_grad) and `expr` on PyTorch's CPU with the same values (bound to a, b, c,
// ...), then compares the outputs and the gradients of sum(out * g) for a random g.
::testing::AssertionResult matches_torch(const std::string& expr, const std::vector<Tensor>& inputs,
                                         const Fn& f, TorchTolerance tol = {});

// Runs `body`, which must throw E whose message contains every one of `needles`.
template <class E>
::testing::AssertionResult throws_with(const std::function<void()>& body,
                                       const std::vector<std::string>& needles) {
  try {
    body();
  } catch (const E& e) {
    std::string msg = e.what();
    for (const auto& n : needles)
      if (msg.find(n) == std::string::npos)
        return ::testing::AssertionFailure() << "message \"" << msg << "\" lacks \"" << n << "\"";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw the wrong type: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

}  // namespace anvil::test
