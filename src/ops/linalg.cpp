// Matrix products: torch.matmul's rank rules, mm, bmm and linear, built on one recorded
// product of two rank-2 or two rank-3 operands.
#include "anvil/ops/linalg.h"

#include "amp/autocast_ops.h"
#include "anvil/autograd/node.h"
#include "anvil/ops/elementwise.h"
#include "backend/matmul_kernels.h"
#include "ops/checks.h"

namespace anvil {
namespace {

// A kernel operand: contiguous, or the contiguous transpose of a transposed view.
struct Operand {
  Tensor t;
  bool trans = false;
};

Operand operand(const Tensor& x) {
  if (x.is_contiguous()) return {x, false};
  Tensor xt = x.transpose(-1, -2);
  if (xt.is_contiguous()) return {xt, true};
  return {x.contiguous(), false};
}

void check_operands(const Tensor& a, const Tensor& b, const char* op) {
  ops::check_defined(a, op, "input");
  ops::check_defined(b, op, "other");
  ops::check_same_device({a, b}, op);
  ANVIL_CHECK(a.dtype() == b.dtype(), DTypeError, op, ": expected both operands of one dtype, got ",
              dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  ANVIL_CHECK(a.dtype() != kBool, DTypeError, op, ": dtype bool is not supported");
}

void check_inner(const Tensor& a, const Tensor& b, int64_t ka, int64_t kb, const char* op) {
  ANVIL_CHECK(ka == kb, ShapeError, op, ": shapes ", to_string(a.shape()), " and ",
              to_string(b.shape()), " cannot be multiplied (", ka, " != ", kb, ")");
}

// a [m, k] x b [k, n] or a [B, m, k] x b [B, k, n]; shapes already checked.
Tensor product(const Tensor& a, const Tensor& b) {
  Shape shape = a.shape();
  shape.back() = b.shape().back();
  Tensor out = Tensor::empty(shape, a.options());
  {
    NoGradGuard no_grad;
    Operand x = operand(a), y = operand(b);
    backend::matmul_kernels[a.device()](out, x.t, y.t, x.trans, y.trans);
  }
  bool ga = a.requires_grad(), gb = b.requires_grad();
  return autograd::record(a.dim() == 3 ? "BmmBackward" : "MmBackward", out, {a, b},
                          [a, b, ga, gb](const Tensor& g) -> std::vector<Tensor> {
                            // dA = dC B^T, dB = A^T dC (transposed views cost no copy).
                            return {ga ? product(g, b.transpose(-1, -2)) : Tensor(),
                                    gb ? product(a.transpose(-1, -2), g) : Tensor()};
                          });
}

}  // namespace

Tensor mm(const Tensor& a, const Tensor& b) {
  if (amp::detail::autocast_active({&a, &b}))
    return amp::detail::run_autocast(amp::detail::CastPolicy::LowerPrecision, {a, b},
                                     [](const auto& t) { return mm(t[0], t[1]); });
  check_operands(a, b, "mm");
  ops::check_dim(a, 2, "mm", "input");
  ops::check_dim(b, 2, "mm", "mat2");
  check_inner(a, b, a.size(1), b.size(0), "mm");
  return product(a, b);
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  if (amp::detail::autocast_active({&a, &b}))
    return amp::detail::run_autocast(amp::detail::CastPolicy::LowerPrecision, {a, b},
                                     [](const auto& t) { return bmm(t[0], t[1]); });
  check_operands(a, b, "bmm");
  ops::check_dim(a, 3, "bmm", "input");
  ops::check_dim(b, 3, "bmm", "mat2");
  ANVIL_CHECK(a.size(0) == b.size(0), ShapeError, "bmm: expected equal batch sizes, got shapes ",
              to_string(a.shape()), " and ", to_string(b.shape()));
  check_inner(a, b, a.size(2), b.size(1), "bmm");
  return product(a, b);
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (amp::detail::autocast_active({&a, &b}))
    return amp::detail::run_autocast(amp::detail::CastPolicy::LowerPrecision, {a, b},
                                     [](const auto& t) { return matmul(t[0], t[1]); });
  check_operands(a, b, "matmul");
  ANVIL_CHECK(a.dim() > 0 && b.dim() > 0, ShapeError,
              "matmul: expected operands with at least 1 dim, got shapes ", to_string(a.shape()),
              " and ", to_string(b.shape()));
  const int64_t da = a.dim(), db = b.dim();
  check_inner(a, b, a.size(-1), db == 1 ? b.size(0) : b.size(-2), "matmul");
  if (da == 1 && db == 1) return product(a.unsqueeze(0), b.unsqueeze(1)).reshape({});
  if (da == 1) return matmul(a.unsqueeze(0), b).squeeze(-2);
  if (db == 1) return matmul(a, b.unsqueeze(-1)).squeeze(-1);
  if (da == 2 && db == 2) return product(a, b);
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  if (db == 2) {
    // Fold a's batch dims into its rows: one large product instead of many small ones.
    Shape out_shape = a.shape();
    out_shape.back() = n;
    const int64_t rows = numel(Shape(a.shape().begin(), a.shape().end() - 1));
    return product(a.reshape({rows, k}), b).reshape(out_shape);
  }
  Shape batch_a(a.shape().begin(), a.shape().end() - 2);
  Shape batch_b(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  const int64_t nb = numel(batch);
  auto batched = [&](const Tensor& x, int64_t r, int64_t c) {
    Shape s = batch;
    s.push_back(r);
    s.push_back(c);
    return x.expand(s).reshape({nb, r, c});
  };
  Tensor out = product(batched(a, m, k), batched(b, k, n));
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  return out.reshape(out_shape);
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  if (amp::detail::autocast_active({&x, &w, &b}))
    return amp::detail::run_autocast(amp::detail::CastPolicy::LowerPrecision, {x, w, b},
                                     [](const auto& t) { return linear(t[0], t[1], t[2]); });
  ops::check_defined(x, "linear", "input");
  ops::check_defined(w, "linear", "weight");
  ops::check_dim(w, 2, "linear", "weight");
  ANVIL_CHECK(x.dim() >= 1, ShapeError, "linear: expected input with at least 1 dim, got shape ",
              to_string(x.shape()));
  ANVIL_CHECK(x.size(-1) == w.size(1), ShapeError, "linear: expected input with last dim ",
              w.size(1), " (weight is ", to_string(w.shape()), "), got shape ",
              to_string(x.shape()));
  if (b.defined()) {
    ANVIL_CHECK(b.shape() == Shape{w.size(0)}, ShapeError, "linear: expected bias of shape [",
                w.size(0), "] (weight is ", to_string(w.shape()), "), got shape ",
                to_string(b.shape()));
    ANVIL_CHECK(b.dtype() == x.dtype(), DTypeError, "linear: expected bias of dtype ",
                dtype_name(x.dtype()), ", got ", dtype_name(b.dtype()));
  }
  Tensor y = matmul(x, w.t());
  return b.defined() ? add(y, b) : y;
}

}  // namespace anvil
