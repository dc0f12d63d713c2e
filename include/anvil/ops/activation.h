// Activation functions and (log-)softmax, as torch.nn.functional defines them.
#pragma once
#include <string>

#include "anvil/core/tensor.h"

namespace anvil {

Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor elu(const Tensor& x, double alpha = 1.0);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor silu(const Tensor& x);  // x * sigmoid(x), a.k.a. swish
// approximate: "none" (exact, erf) or "tanh".
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
// Numerically stable (max subtracted) along `dim`.
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace anvil
