// Reductions over all dims or over a list of dims, with keepdim, as in PyTorch.
#pragma once
#include <vector>

#include "anvil/core/tensor.h"

namespace anvil {

using Dims = std::vector<int64_t>;

// Integer and bool inputs sum to int64; floats keep their dtype.
Tensor sum(const Tensor& a);
Tensor sum(const Tensor& a, const Dims& dims, bool keepdim = false);
Tensor mean(const Tensor& a);  // floating inputs only
Tensor mean(const Tensor& a, const Dims& dims, bool keepdim = false);

// Values of the largest / smallest element. The gradient goes to every element that equals
// the result, split evenly (as torch.max() without a dim does).
Tensor max(const Tensor& a);
Tensor min(const Tensor& a);
// Reduce one dim: values and int64 indices (first occurrence). Gradient flows to the index.
struct ValuesIndices {
  Tensor values;
  Tensor indices;
};
ValuesIndices max(const Tensor& a, int64_t dim, bool keepdim = false);
ValuesIndices min(const Tensor& a, int64_t dim, bool keepdim = false);
// Over several dims, values only (torch.amax / amin); ties share the gradient evenly.
Tensor amax(const Tensor& a, const Dims& dims, bool keepdim = false);
Tensor amin(const Tensor& a, const Dims& dims, bool keepdim = false);
// Index of the largest / smallest element of the flattened tensor, or along `dim` (int64).
Tensor argmax(const Tensor& a);
Tensor argmin(const Tensor& a);
Tensor argmax(const Tensor& a, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& a, int64_t dim, bool keepdim = false);

// Variance / standard deviation dividing by N - correction (Bessel's correction = 1).
// (No correction argument on the all-dims overloads: var(a, {0}) must mean dim 0.)
Tensor var(const Tensor& a);
Tensor var(const Tensor& a, const Dims& dims, int64_t correction = 1, bool keepdim = false);
// torch.std, named std_dev because a function called `std` would make `std::` ambiguous
// wherever `using namespace anvil;` is in effect.
Tensor std_dev(const Tensor& a);
Tensor std_dev(const Tensor& a, const Dims& dims, int64_t correction = 1, bool keepdim = false);

// Sums `a` down to `shape` (the inverse of broadcasting `shape` up to a.shape()).
Tensor sum_to(const Tensor& a, const Shape& shape);

}  // namespace anvil
