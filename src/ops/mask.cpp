// tril, triu (one triangle kernel each way) and masked_fill (a where).
#include "anvil/ops/mask.h"

#include "anvil/autograd/node.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "backend/mask_kernels.h"
#include "ops/checks.h"

namespace anvil {
namespace {

Tensor triangle(const Tensor& x, int64_t diagonal, bool lower) {
  const char* op = lower ? "tril" : "triu";
  ops::check_defined(x, op, "input");
  ANVIL_CHECK(x.dim() >= 2, ShapeError, op, ": expected an input with at least 2 dims, got shape ",
              to_string(x.shape()));
  const int64_t rows = x.size(-2), cols = x.size(-1);
  const backend::TriangleArgs args{.batch = rows * cols == 0 ? 0 : x.numel() / (rows * cols),
                                   .rows = rows,
                                   .cols = cols,
                                   .diagonal = diagonal,
                                   .lower = lower};
  Tensor out = Tensor::empty(x.shape(), x.options());
  if (out.numel() > 0) {
    NoGradGuard no_grad;
    backend::triangle_kernels[x.device()](args, out, x.contiguous());
  }
  return autograd::record(lower ? "TrilBackward" : "TriuBackward", out, {x},
                          [diagonal, lower](const Tensor& g) -> std::vector<Tensor> {
                            return {triangle(g, diagonal, lower)};
                          });
}

}  // namespace

Tensor tril(const Tensor& x, int64_t diagonal) { return triangle(x, diagonal, true); }
Tensor triu(const Tensor& x, int64_t diagonal) { return triangle(x, diagonal, false); }

Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value) {
  ops::check_defined(x, "masked_fill", "input");
  ops::check_defined(mask, "masked_fill", "mask");
  ops::check_same_device({x, mask}, "masked_fill");
  ANVIL_CHECK(mask.dtype() == kBool, DTypeError, "masked_fill: expected a mask of dtype bool, got ",
              dtype_name(mask.dtype()));
  broadcast_shapes(x.shape(), mask.shape(), "masked_fill");
  Tensor fill;
  {
    NoGradGuard no_grad;
    fill = scalar_tensor(value, x.options());
  }
  return where(mask, fill, x);
}

}  // namespace anvil
