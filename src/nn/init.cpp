// torch.nn.init's formulas on anvil's in-place random fills.
#include "anvil/nn/init.h"

#include <cmath>

#include "anvil/autograd/grad_mode.h"
#include "anvil/ops/creation.h"

namespace anvil::nn::init {
namespace {

void check_floating(const Tensor& t, const char* fn) {
  ANVIL_CHECK(t.defined(), ValueError, "nn::init::", fn, ": expected a defined tensor");
  ANVIL_CHECK(t.is_floating_point(), DTypeError, "nn::init::", fn,
              ": expected a floating-point tensor, got ", dtype_name(t.dtype()));
}

int64_t fan(const Tensor& t, const std::string& mode, const char* fn) {
  ANVIL_CHECK(mode == "fan_in" || mode == "fan_out", ValueError, "nn::init::", fn,
              ": expected mode \"fan_in\" or \"fan_out\", got \"", mode, "\"");
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  return mode == "fan_in" ? in : out;
}

Tensor fill_uniform(const Tensor& t, double lo, double hi, Generator* gen) {
  NoGradGuard no_grad;
  Tensor h = t;
  if (h.numel() > 0) anvil::uniform_(h, lo, hi, gen);
  return t;
}

Tensor fill_normal(const Tensor& t, double mean, double std, Generator* gen) {
  NoGradGuard no_grad;
  Tensor h = t;
  if (h.numel() > 0) anvil::normal_(h, mean, std, gen);
  return t;
}

}  // namespace

double calculate_gain(const std::string& nonlinearity, std::optional<double> param) {
  for (const char* one : {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                          "conv_transpose2d", "conv_transpose3d", "sigmoid"})
    if (nonlinearity == one) return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") {
    const double slope = param.value_or(0.01);
    return std::sqrt(2.0 / (1 + slope * slope));
  }
  if (nonlinearity == "selu") return 3.0 / 4;
  throw ValueError("nn::init::calculate_gain: unsupported nonlinearity \"" + nonlinearity +
                   "\" (expected linear, conv*, sigmoid, tanh, relu, leaky_relu or selu)");
}

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  ANVIL_CHECK(t.defined() && t.dim() >= 2, ValueError,
              "nn::init::calculate_fan_in_and_fan_out: fan in and fan out need a tensor with at "
              "least 2 dims, got ",
              t.defined() ? to_string(t.shape()) : "an undefined tensor");
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

Tensor kaiming_uniform_(const Tensor& t, double a, const std::string& mode,
                        const std::string& nonlinearity, Generator* gen) {
  check_floating(t, "kaiming_uniform_");
  const int64_t f = fan(t, mode, "kaiming_uniform_");
  if (t.numel() == 0) return t;
  const double bound = std::sqrt(3.0) * calculate_gain(nonlinearity, a) / std::sqrt(double(f));
  return fill_uniform(t, -bound, bound, gen);
}

Tensor kaiming_normal_(const Tensor& t, double a, const std::string& mode,
                       const std::string& nonlinearity, Generator* gen) {
  check_floating(t, "kaiming_normal_");
  const int64_t f = fan(t, mode, "kaiming_normal_");
  if (t.numel() == 0) return t;
  return fill_normal(t, 0, calculate_gain(nonlinearity, a) / std::sqrt(double(f)), gen);
}

Tensor xavier_uniform_(const Tensor& t, double gain, Generator* gen) {
  check_floating(t, "xavier_uniform_");
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  const double a = gain * std::sqrt(6.0 / double(in + out));
  return fill_uniform(t, -a, a, gen);
}

Tensor xavier_normal_(const Tensor& t, double gain, Generator* gen) {
  check_floating(t, "xavier_normal_");
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  return fill_normal(t, 0, gain * std::sqrt(2.0 / double(in + out)), gen);
}

Tensor uniform_(const Tensor& t, double a, double b, Generator* gen) {
  check_floating(t, "uniform_");
  ANVIL_CHECK(a <= b, ValueError, "nn::init::uniform_: expected a <= b, got a=", a, ", b=", b);
  return fill_uniform(t, a, b, gen);
}

Tensor normal_(const Tensor& t, double mean, double std, Generator* gen) {
  check_floating(t, "normal_");
  ANVIL_CHECK(std >= 0, ValueError, "nn::init::normal_: expected std >= 0, got ", std);
  return fill_normal(t, mean, std, gen);
}

Tensor constant_(const Tensor& t, double value) {
  ANVIL_CHECK(t.defined(), ValueError, "nn::init::constant_: expected a defined tensor");
  NoGradGuard no_grad;
  t.fill_(value);
  return t;
}

Tensor zeros_(const Tensor& t) { return constant_(t, 0); }
Tensor ones_(const Tensor& t) { return constant_(t, 1); }

}  // namespace anvil::nn::init
