// Creating tensors: constants, ranges, identity, random draws, and wrapping host data.
#pragma once
#include <vector>

#include "anvil/core/generator.h"
#include "anvil/core/tensor.h"

namespace anvil {

Tensor empty(const Shape& shape, TensorOptions opts = {});
Tensor zeros(const Shape& shape, TensorOptions opts = {});
Tensor ones(const Shape& shape, TensorOptions opts = {});
Tensor full(const Shape& shape, Scalar value, TensorOptions opts = {});
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, Scalar value);

// [start, end) in steps of `step`. Integer arguments and an unset dtype give int64
// (arange(5) is int64, arange(0., 1., .25) float32), as in PyTorch.
Tensor arange(Scalar end);
Tensor arange(Scalar start, Scalar end, Scalar step = 1);
Tensor arange(Scalar start, Scalar end, Scalar step, TensorOptions opts);
// `steps` evenly spaced values from start to end inclusive.
Tensor linspace(double start, double end, int64_t steps, TensorOptions opts = {});
// n x m identity (m defaults to n).
Tensor eye(int64_t n, int64_t m = -1, TensorOptions opts = {});

// Uniform in [0, 1).
Tensor rand(const Shape& shape, TensorOptions opts = {}, Generator* gen = nullptr);
// Standard normal (Box-Muller on Philox draws).
Tensor randn(const Shape& shape, TensorOptions opts = {}, Generator* gen = nullptr);
// Integers uniform in [low, high); dtype defaults to int64.
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions opts = kInt64,
               Generator* gen = nullptr);
Tensor rand_like(const Tensor& t, Generator* gen = nullptr);
Tensor randn_like(const Tensor& t, Generator* gen = nullptr);
// In place: uniform in [from, to) / normal(mean, std).
Tensor& uniform_(Tensor& t, double from = 0, double to = 1, Generator* gen = nullptr);
Tensor& normal_(Tensor& t, double mean = 0, double std = 1, Generator* gen = nullptr);

// Copies host values into a new tensor of `shape` (defaults to a 1-D tensor of all values).
// The dtype defaults to that of T; a different opts.dtype converts.
template <class T>
Tensor tensor(const std::vector<T>& values, const Shape& shape = {}, TensorOptions opts = {});
// A scalar (0-dim) tensor.
Tensor scalar_tensor(Scalar value, TensorOptions opts = {});
// Wraps memory the caller owns without copying; `release` runs when the last view is gone.
// `strides` defaults to contiguous. The memory must stay valid until then.
Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device = kCPU,
                 std::function<void(void*)> release = {}, const Strides& strides = {});

}  // namespace anvil
