// apply_rotary (one rotary kernel each way) and the cos/sin tables of rotary_cos_sin.
#include "anvil/ops/rotary.h"

#include "anvil/autograd/node.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/join.h"
#include "backend/rotary_kernels.h"
#include "ops/checks.h"

namespace anvil {
namespace {

// cos or sin as the kernel reads it: x's shape, stride 1 along the last dim.
Tensor table_view(const Tensor& t, const Shape& shape) {
  Tensor c = t.contiguous();
  if (c.dim() == 0 || c.size(-1) != shape.back()) {  // broadcast along the last dim: spell it out
    Shape rows = c.shape();
    if (rows.empty()) rows.push_back(1);
    rows.back() = shape.back();
    c = c.expand(rows).contiguous();
  }
  return c.expand(shape);
}

void check_table(const Tensor& t, const Tensor& x, const char* arg) {
  ops::check_defined(t, "apply_rotary", arg);
  ANVIL_CHECK(t.dtype() == x.dtype(), DTypeError, "apply_rotary: expected ", arg, " of x's dtype ",
              dtype_name(x.dtype()), ", got ", dtype_name(t.dtype()));
  bool fits = t.dim() <= x.dim();
  for (int64_t i = 1; fits && i <= t.dim(); ++i) fits = t.size(-i) == 1 || t.size(-i) == x.size(-i);
  ANVIL_CHECK(fits, ShapeError, "apply_rotary: expected ", arg, " broadcastable to x's shape ",
              to_string(x.shape()), ", got shape ", to_string(t.shape()));
}

// cat(-x[..., D/2:], x[..., :D/2]).
Tensor rotate_half(const Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return cat({neg(x.narrow(-1, h, h)), x.narrow(-1, 0, h)}, -1);
}

Tensor rotate(bool transpose, const Tensor& x, const Tensor& cos, const Tensor& sin) {
  Tensor out = Tensor::empty(x.shape(), x.options());
  NoGradGuard no_grad;
  backend::rotary_kernels[x.device()](transpose, out, x.contiguous(), cos, sin);
  return out;
}

// Gradients of apply_rotary for x, cos and sin (the last two only where asked for).
std::vector<Tensor> apply_rotary_backward(const Tensor& g, const Tensor& x, const Tensor& cos,
                                          const Tensor& sin, bool need_cos, bool need_sin) {
  return {rotate(true, g.to(cos.dtype()), cos, sin), need_cos ? mul(g, x) : Tensor(),
          need_sin ? mul(g, rotate_half(x)) : Tensor()};
}

}  // namespace

Tensor apply_rotary(const Tensor& x, const Tensor& cos, const Tensor& sin) {
  ops::check_defined(x, "apply_rotary", "x");
  ops::check_floating(x, "apply_rotary", "x");
  ops::check_same_device({x, cos, sin}, "apply_rotary");
  ANVIL_CHECK(x.dim() >= 1 && x.size(-1) % 2 == 0, ShapeError,
              "apply_rotary: expected x [..., T, D] with an even D, got shape ",
              to_string(x.shape()));
  check_table(cos, x, "cos");
  check_table(sin, x, "sin");
  const Tensor c = table_view(cos.detach(), x.shape()), s = table_view(sin.detach(), x.shape());
  Tensor out = rotate(false, x, c, s);
  const bool need_cos = cos.requires_grad(), need_sin = sin.requires_grad();
  Tensor saved_x = need_cos || need_sin ? x.detach() : Tensor();
  return autograd::record("ApplyRotaryBackward", out, {x, cos, sin},
                          [saved_x, c, s, need_cos, need_sin](const Tensor& g) {
                            return apply_rotary_backward(g, saved_x, c, s, need_cos, need_sin);
                          });
}

RotaryCosSin rotary_cos_sin(int64_t seq_len, int64_t dim, double base, TensorOptions options) {
  ANVIL_CHECK(seq_len >= 0, ValueError, "rotary_cos_sin: expected seq_len >= 0, got ", seq_len);
  ANVIL_CHECK(dim > 0 && dim % 2 == 0, ValueError,
              "rotary_cos_sin: expected a positive, even dim, got ", dim);
  ANVIL_CHECK(base > 0, ValueError, "rotary_cos_sin: expected base > 0, got ", base);
  ANVIL_CHECK(is_floating(options.dtype_), DTypeError,
              "rotary_cos_sin: expected a floating-point dtype, got ", dtype_name(options.dtype_));
  NoGradGuard no_grad;
  const TensorOptions compute =
      TensorOptions(options.dtype_ == kFloat64 ? kFloat64 : kFloat32).device(options.device_);
  Tensor inv_freq = 1.0 / pow(base, arange(0, dim, 2, compute) / double(dim));  // [dim / 2]
  Tensor positions = arange(0, seq_len, 1, compute);
  Tensor freqs = mul(positions.unsqueeze(1), inv_freq.unsqueeze(0));  // [seq_len, dim / 2]
  Tensor emb = cat({freqs, freqs}, -1);
  Tensor c = anvil::cos(emb).to(options.dtype_), s = anvil::sin(emb).to(options.dtype_);
  if (options.requires_grad_) {
    c.requires_grad_();
    s.requires_grad_();
  }
  return {c, s};
}

}  // namespace anvil
