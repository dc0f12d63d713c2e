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

// The relative spacing of dtype's values: one unit in the last place of x is at most
// epsilon(dt) * |x| (2^-10 for float16, 2^-7 for bfloat16, 2^-23 for float32, 2^-52 for
// float64), so one rounding to nearest moves x by at most epsilon(dt) / 2 * |x|. Tolerances of
// low-precision results are set from it and the arithmetic (how many roundings, of what).
double epsilon(DType dt);

// |actual - expected| <= bound everywhere (bound broadcasts to their common shape), for
// tolerances that differ by element, such as a rounding bound proportional to the sum of the
// magnitudes that went into each output. NaN matches NaN. The message names the worst element.
::testing::AssertionResult within(const Tensor& actual, const Tensor& expected, const Tensor& bound);

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
// ...), then compares the outputs and the gradients of sum(out * g) for a random g. Fails
// when one result is part of an autograd graph and the other is not (a lost node would
// otherwise leave only the forward compared).
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
