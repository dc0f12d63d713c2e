// Parameter initialisation, as torch.nn.init: every function fills its tensor in place (under
// NoGradGuard, so parameters that require grad can be filled) and returns it.
//
// Random draws come from `gen`, by default anvil's CPU generator (seed it with manual_seed);
// the distributions are PyTorch's, the numbers are anvil's own.
#pragma once
#include <optional>
#include <string>
#include <utility>

#include "anvil/core/generator.h"
#include "anvil/core/tensor.h"

namespace anvil::nn::init {

// The recommended gain for a nonlinearity: 1 for "linear", "conv1d/2d/3d",
// "conv_transpose1d/2d/3d" and "sigmoid"; 5/3 for "tanh"; sqrt(2) for "relu";
// sqrt(2 / (1 + slope^2)) for "leaky_relu" (param = negative slope, default 0.01); 3/4 for
// "selu". Throws ValueError for anything else.
double calculate_gain(const std::string& nonlinearity, std::optional<double> param = {});

// (fan_in, fan_out) of a weight of shape [out, in, k...]: in * prod(k) and out * prod(k).
// Throws ValueError for fewer than 2 dims.
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);

// U(-bound, bound) with bound = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a),
// fan = fan_in or fan_out by `mode` ("fan_in" or "fan_out"; else ValueError).
Tensor kaiming_uniform_(const Tensor& t, double a = 0, const std::string& mode = "fan_in",
                        const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
// N(0, std^2) with std = gain / sqrt(fan).
Tensor kaiming_normal_(const Tensor& t, double a = 0, const std::string& mode = "fan_in",
                       const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
// U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).
Tensor xavier_uniform_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);
// N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
Tensor xavier_normal_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);

// U(a, b); throws ValueError unless a <= b.
Tensor uniform_(const Tensor& t, double a = 0.0, double b = 1.0, Generator* gen = nullptr);
// N(mean, std^2); throws ValueError for std < 0.
Tensor normal_(const Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
Tensor constant_(const Tensor& t, double value);
Tensor zeros_(const Tensor& t);
Tensor ones_(const Tensor& t);

}  // namespace anvil::nn::init
