// Layer normalisation and RMS normalisation over trailing dims, as
// torch.nn.functional.layer_norm and torch.nn.functional.rms_norm.
//
// Both normalise each "row" of an input of shape [*, normalized_shape]: the trailing dims that
// `normalized_shape` names are flattened into rows of N = prod(normalized_shape) elements, the
// leading dims (possibly none) count the rows. The statistics of a row are its own; nothing
// is shared between rows (unlike batch_norm).
//
// Precision: float32 and 16-bit inputs compute in float32 (float64 in float64) and round the
// result once; the result keeps the input's dtype. weight and bias may be of any floating
// dtype: they are used at the compute precision (a float32 weight with a bfloat16 input, as
// mixed-precision training keeps it, is used as float32). Gradients of weight and bias arrive
// in their own dtypes.
//
// Autocast (amp::autocast): both run in float32, as on torch.autocast's float32 list.
//
// Errors (all name the op): ShapeError when normalized_shape is empty, has more dims than the
// input or differs from the input's trailing dims, or when weight / bias are not of shape
// normalized_shape; DTypeError for a non-floating input, weight or bias; DeviceError when they
// are not on one device; ValueError for a negative eps.
#pragma once
#include <optional>

#include "anvil/core/tensor.h"

namespace anvil {

// (x - mean) / sqrt(var + eps) * weight + bias per row, with the row's mean and biased
// variance (divided by N). weight and bias [normalized_shape] are optional (undefined: scale
// 1, shift 0). The result has the input's shape.
Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

// x / sqrt(mean(x^2) + eps) * weight per row. weight [normalized_shape] is optional. eps
// defaults to the machine epsilon of the compute type, as torch 2.x: float32's
// (torch.finfo(torch.float32).eps, 1.19e-7) for float32 and 16-bit inputs, float64's for
// float64.
Tensor rms_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight = {},
                std::optional<double> eps = std::nullopt);

}  // namespace anvil
