// Dropout: zeroes each element with probability p and scales the rest by 1/(1-p).
#pragma once
#include "anvil/core/generator.h"
#include "anvil/core/tensor.h"

namespace anvil {

// Identity when !training or p == 0. The mask comes from Philox draws of `gen` (default: the
// device's generator), the same on every backend. Otherwise the result is a new contiguous
// tensor, and backward keeps a one-byte mask per element. Throws ValueError unless 0 <= p <= 1.
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true, Generator* gen = nullptr);

}  // namespace anvil
