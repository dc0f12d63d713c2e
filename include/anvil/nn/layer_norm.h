// Layer and RMS normalisation layers, as torch.nn.LayerNorm and torch.nn.RMSNorm: each
// normalises the trailing dims `normalized_shape` of its input, row by row (see
// anvil/ops/layer_norm.h for the formulas, precision and errors).
//
//   nn::LayerNorm ln(768);              // GPT-2's ln_1: weight [768] = 1, bias [768] = 0
//   Tensor y = ln(x);                   // x [batch, seq, 768] -> y of the same shape
#pragma once
#include <optional>

#include "anvil/nn/module.h"

namespace anvil::nn {

class LayerNorm : public Module {
 public:
  // Parameters weight (ones) and, with bias, bias (zeros), of shape normalized_shape, when
  // elementwise_affine (neither otherwise, as torch). Throws ValueError for an empty
  // normalized_shape, a size below 1 or eps < 0.
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
                     bool bias = true);
  explicit LayerNorm(int64_t normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
                     bool bias = true)
      : LayerNorm(Shape{normalized_shape}, eps, elementwise_affine, bias) {}
  // [*, normalized_shape] -> the same shape. Throws ShapeError for other trailing dims.
  Tensor forward(const Tensor& x) override;
  // weight = 1, bias = 0.
  void reset_parameters();
  // As torch prints it, with anvil's bools: "(768,), eps=1e-05, elementwise_affine=true, bias=true".
  std::string extra_repr() const override;

  Shape normalized_shape;
  double eps;
  bool elementwise_affine;
  Tensor weight, bias;  // undefined unless elementwise_affine (bias: and bias)
};

class RMSNorm : public Module {
 public:
  // Parameter weight (ones) of shape normalized_shape when elementwise_affine. eps unset: the
  // machine epsilon of the input's compute type (see rms_norm). Throws ValueError for an
  // empty normalized_shape, a size below 1 or eps < 0.
  explicit RMSNorm(Shape normalized_shape, std::optional<double> eps = std::nullopt,
                   bool elementwise_affine = true);
  explicit RMSNorm(int64_t normalized_shape, std::optional<double> eps = std::nullopt,
                   bool elementwise_affine = true)
      : RMSNorm(Shape{normalized_shape}, eps, elementwise_affine) {}
  Tensor forward(const Tensor& x) override;
  void reset_parameters();
  // "(768,), eps=none, elementwise_affine=true" (eps=1e-06 when set).
  std::string extra_repr() const override;

  Shape normalized_shape;
  std::optional<double> eps;
  bool elementwise_affine;
  Tensor weight;  // undefined unless elementwise_affine
};

}  // namespace anvil::nn
