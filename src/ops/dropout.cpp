// Dropout as one fused kernel each way (backend/dropout_kernels.h). The keep mask is
// rand(...) < 1 - p, with float32 draws whatever x's dtype (one Philox lane per element), so
// every backend that follows the generator's counter scheme drops the same elements for the
// same seed and offset. Output and gradient are bit for bit those of the composition
//   mul(x, mul(lt(rand(...), 1 - p).to(dtype), 1 / (1 - p)))
// that this op replaces, which drew a float32 tensor and ran five kernels.
#include "anvil/ops/dropout.h"

#include "anvil/autograd/node.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "backend/dropout_kernels.h"
#include "ops/checks.h"

namespace anvil {
namespace {

// The value scalar_tensor(v, dtype) holds, as a double: fill_ takes doubles to the 16-bit
// types through float.
double as_held_by(DType dtype, double v) {
  if (dtype == kFloat64) return v;
  if (dtype == kFloat16) return float(float16(float(v)));
  if (dtype == kBFloat16) return float(bfloat16(float(v)));
  return float(v);
}

// g * mask * scale in the dtype mul(g, scale tensor of x's dtype) computes in; `scale` is
// exact in x's dtype, so in that one too.
Tensor masked_scale(const Tensor& g, const Tensor& mask, double scale, DType x_dtype) {
  ANVIL_CHECK(g.shape() == mask.shape(), ShapeError,
              "DropoutBackward: expected a gradient of shape ", to_string(mask.shape()), ", got ",
              to_string(g.shape()));
  DType dtype = promote_types(g.dtype(), x_dtype);
  Tensor grad = Tensor::empty(g.shape(), TensorOptions(dtype).device(g.device()));
  backend::dropout_backward_kernels[g.device()](scale, grad, g.to(dtype), mask);
  return grad;
}

// p == 1 draws nothing; x * 0 rather than zeros keeps -0 and NaN as mul gives them.
Tensor drop_all(const Tensor& x) {
  Tensor zero;
  Tensor out;
  {
    NoGradGuard no_grad;
    zero = zeros(x.shape(), TensorOptions(x.dtype()).device(x.device()));
    out = mul(x, zero);
  }
  return autograd::record(
      "DropoutBackward", out, {x},
      [zero](const Tensor& g) -> std::vector<Tensor> { return {mul(g, zero)}; });
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  ops::check_defined(x, "dropout", "input");
  ANVIL_CHECK(p >= 0 && p <= 1, ValueError, "dropout: expected a probability p in [0, 1], got ", p);
  ops::check_floating(x, "dropout");
  if (!training || p == 0) return x;
  if (p == 1) return drop_all(x);

  Generator& g = gen ? *gen : default_generator(x.device());
  const Generator::Draw draw = g.reserve_draw(backend::dropout_blocks(x.numel()));
  const backend::DropoutArgs args{.seed = draw.seed,
                                  .first_block = draw.first_block,
                                  .device_state = draw.device_state,
                                  .keep_below = float(1.0 - p),
                                  .scale = as_held_by(x.dtype(), 1.0 / (1.0 - p))};
  Tensor out = Tensor::empty(x.shape(), TensorOptions(x.dtype()).device(x.device()));
  Tensor mask = Tensor::empty(x.shape(), TensorOptions(kBool).device(x.device()));
  {
    NoGradGuard no_grad;
    backend::dropout_kernels[x.device()](args, out, mask, x.contiguous());
  }
  const DType dtype = x.dtype();
  const double scale = args.scale;
  return autograd::record("DropoutBackward", out, {x},
                          [mask, scale, dtype](const Tensor& grad) -> std::vector<Tensor> {
                            return {masked_scale(grad, mask, scale, dtype)};
                          });
}

}  // namespace anvil
