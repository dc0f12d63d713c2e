// Reductions: dim handling, dtype rules, dispatch and gradients.
#include "anvil/ops/reduction.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

#include "amp/autocast_ops.h"
#include "anvil/autograd/node.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "backend/reduce_kernels.h"
#include "ops/checks.h"

namespace anvil {
namespace {
using backend::ReduceOp;

struct Plan {
  std::vector<bool> reduced;  // per input dim
  Shape out_shape;            // with keepdim applied
  Shape kept_shape;           // reduced dims as 1 (for broadcasting gradients back)
  int64_t cols = 1;
};

// An empty `dims` list means all dims (as torch.sum(x, dim=[]) does).
Plan make_plan(const Tensor& a, const Dims& dims, bool keepdim, const char* op) {
  Plan p;
  const int64_t n = a.dim();
  p.reduced.assign(size_t(n), dims.empty());
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, n, op);
    if (n == 0) continue;
    ANVIL_CHECK(!p.reduced[w], IndexError, op, ": dim ", w, " appears twice in ", to_string(dims));
    p.reduced[w] = true;
  }
  for (int64_t i = 0; i < n; ++i) {
    if (p.reduced[i]) {
      p.cols *= a.shape()[i];
      p.kept_shape.push_back(1);
      if (keepdim) p.out_shape.push_back(1);
    } else {
      p.kept_shape.push_back(a.shape()[i]);
      p.out_shape.push_back(a.shape()[i]);
    }
  }
  return p;
}

// Runs the kernel with the reduced dims moved last. No autograd.
Tensor reduce(const Tensor& a, const Plan& p, backend::ReduceArgs args, DType out_dtype,
              const char* op) {
  std::vector<int64_t> perm;
  for (int64_t i = 0; i < a.dim(); ++i)
    if (!p.reduced[i]) perm.push_back(i);
  for (int64_t i = 0; i < a.dim(); ++i)
    if (p.reduced[i]) perm.push_back(i);
  NoGradGuard no_grad;
  Tensor in = a.permute(perm).contiguous();
  args.cols = p.cols;
  args.rows = p.cols == 0 ? numel(p.out_shape) : a.numel() / p.cols;
  Tensor out = Tensor::empty(p.out_shape, TensorOptions(out_dtype).device(a.device()));
  if (p.cols == 0) {
    ANVIL_CHECK(args.op == ReduceOp::Sum || args.op == ReduceOp::Mean || args.op == ReduceOp::Var,
                ValueError, op, ": cannot reduce over a zero-size dimension (shape ",
                to_string(a.shape()), ") since the operation has no identity");
    out.fill_(args.op == ReduceOp::Sum ? 0.0 : std::nan(""));
    return out;
  }
  backend::reduce_kernels[a.device()](args, out, in);
  return out;
}

DType sum_dtype(DType t) { return is_floating(t) ? t : kInt64; }

// Gradient of max/min/amax/amin: split evenly among the elements equal to the result.
Tensor extremum_grad(const Tensor& g, const Tensor& a, const Tensor& result, const Plan& p) {
  Tensor r = result.reshape(p.kept_shape), gk = g.reshape(p.kept_shape);
  Tensor mask = eq(a, r).to(a.dtype());
  Dims dims;
  for (int64_t i = 0; i < a.dim(); ++i)
    if (p.reduced[i]) dims.push_back(i);
  Tensor count = sum(mask, dims, true);
  return div(mul(mask, gk), count);
}

Tensor extremum(const Tensor& a, const Dims& dims, bool keepdim, bool is_max, const char* op) {
  ops::check_defined(a, op, "input");
  Plan p = make_plan(a, dims, keepdim, op);
  Tensor out = reduce(a, p, {is_max ? ReduceOp::Max : ReduceOp::Min}, a.dtype(), op);
  // Saved as a detached view: capturing `out` itself would make its node own it (a cycle).
  Tensor result = out.detach();
  return autograd::record(is_max ? "MaxBackward" : "MinBackward", out, {a},
                          [a, result, p](const Tensor& g) -> std::vector<Tensor> {
                            return {extremum_grad(g, a, result, p)};
                          });
}

Tensor arg_extremum(const Tensor& a, std::optional<int64_t> dim, bool keepdim, bool is_max,
                    const char* op) {
  ops::check_defined(a, op, "input");
  backend::ReduceArgs args{is_max ? ReduceOp::ArgMax : ReduceOp::ArgMin};
  if (!dim) {
    Tensor flat = a.reshape({-1});
    return reduce(flat, make_plan(flat, {0}, false, op), args, kInt64, op);
  }
  return reduce(a, make_plan(a, {*dim}, keepdim, op), args, kInt64, op);
}

ValuesIndices extremum_dim(const Tensor& a, int64_t dim, bool keepdim, bool is_max,
                           const char* op) {
  ops::check_defined(a, op, "input");
  int64_t d = wrap_dim(dim, a.dim(), op);
  Plan p = make_plan(a, {d}, keepdim, op);
  Tensor idx = reduce(a, p, {is_max ? ReduceOp::ArgMax : ReduceOp::ArgMin}, kInt64, op);
  Tensor vals = reduce(a, p, {is_max ? ReduceOp::Max : ReduceOp::Min}, a.dtype(), op);
  if (a.dim() == 0) return {vals, idx};
  Shape in_shape = a.shape();
  Shape kept = p.kept_shape;
  vals = autograd::record(is_max ? "MaxBackward" : "MinBackward", vals, {a},
                          [in_shape, kept, d, idx](const Tensor& g) -> std::vector<Tensor> {
                            // Route the gradient to the chosen index only.
                            Tensor i = idx.reshape(kept);
                            Tensor hot = eq(arange(0, in_shape[d], 1, TensorOptions(kInt64).device(g.device()))
                                                .reshape([&] {
                                                  Shape s(in_shape.size(), 1);
                                                  s[d] = in_shape[d];
                                                  return s;
                                                }()),
                                            i);
                            return {mul(hot.to(g.dtype()), g.reshape(kept))};
                          });
  return {vals, idx};
}

}  // namespace

Tensor sum(const Tensor& a, const Dims& dims, bool keepdim) {
  if (amp::detail::autocast_active({&a}))
    return amp::detail::run_autocast(amp::detail::CastPolicy::Float32, {a},
                                     [&](const auto& t) { return sum(t[0], dims, keepdim); });
  ops::check_defined(a, "sum", "input");
  Plan p = make_plan(a, dims, keepdim, "sum");
  Tensor out = reduce(a, p, {ReduceOp::Sum}, sum_dtype(a.dtype()), "sum");
  Shape in_shape = a.shape();
  Shape kept = p.kept_shape;
  return autograd::record("SumBackward", out, {a},
                          [in_shape, kept](const Tensor& g) -> std::vector<Tensor> {
                            return {g.reshape(kept).expand(in_shape)};
                          });
}
Tensor sum(const Tensor& a) { return sum(a, {}, false); }

Tensor mean(const Tensor& a, const Dims& dims, bool keepdim) {
  ops::check_defined(a, "mean", "input");
  ANVIL_CHECK(is_floating(a.dtype()), DTypeError,
              "mean: expected a floating-point input (as torch.mean), got ", dtype_name(a.dtype()));
  Plan p = make_plan(a, dims, keepdim, "mean");
  Tensor out = reduce(a, p, {ReduceOp::Mean}, a.dtype(), "mean");
  Shape in_shape = a.shape();
  Shape kept = p.kept_shape;
  double n = double(p.cols);
  return autograd::record("MeanBackward", out, {a},
                          [in_shape, kept, n](const Tensor& g) -> std::vector<Tensor> {
                            return {div(g.reshape(kept), n).expand(in_shape)};
                          });
}
Tensor mean(const Tensor& a) { return mean(a, {}, false); }

Tensor max(const Tensor& a) {
  ANVIL_CHECK(a.defined() && a.numel() > 0, ValueError,
              "max: expected a non-empty tensor (the maximum of nothing is undefined)");
  return extremum(a, {}, false, true, "max");
}
Tensor min(const Tensor& a) {
  ANVIL_CHECK(a.defined() && a.numel() > 0, ValueError,
              "min: expected a non-empty tensor (the minimum of nothing is undefined)");
  return extremum(a, {}, false, false, "min");
}
Tensor amax(const Tensor& a, const Dims& dims, bool keepdim) {
  return extremum(a, dims, keepdim, true, "amax");
}
Tensor amin(const Tensor& a, const Dims& dims, bool keepdim) {
  return extremum(a, dims, keepdim, false, "amin");
}
ValuesIndices max(const Tensor& a, int64_t dim, bool keepdim) {
  return extremum_dim(a, dim, keepdim, true, "max");
}
ValuesIndices min(const Tensor& a, int64_t dim, bool keepdim) {
  return extremum_dim(a, dim, keepdim, false, "min");
}
Tensor argmax(const Tensor& a) { return arg_extremum(a, std::nullopt, false, true, "argmax"); }
Tensor argmin(const Tensor& a) { return arg_extremum(a, std::nullopt, false, false, "argmin"); }
Tensor argmax(const Tensor& a, int64_t dim, bool keepdim) {
  return arg_extremum(a, dim, keepdim, true, "argmax");
}
Tensor argmin(const Tensor& a, int64_t dim, bool keepdim) {
  return arg_extremum(a, dim, keepdim, false, "argmin");
}

Tensor var(const Tensor& a, const Dims& dims, int64_t correction, bool keepdim) {
  ops::check_defined(a, "var", "input");
  ops::check_floating(a, "var");
  Plan p = make_plan(a, dims, keepdim, "var");
  backend::ReduceArgs args{ReduceOp::Var};
  args.correction = correction;
  Tensor out = reduce(a, p, args, a.dtype(), "var");
  Dims rd;
  for (int64_t i = 0; i < a.dim(); ++i)
    if (p.reduced[i]) rd.push_back(i);
  double denom = double(p.cols - correction);
  Shape kept = p.kept_shape;
  return autograd::record("VarBackward", out, {a},
                          [a, rd, denom, kept](const Tensor& g) -> std::vector<Tensor> {
                            // d var / d x = 2 (x - mean) / (N - correction)
                            Tensor centered = sub(a, mean(a, rd, true));
                            return {mul(centered, div(g.reshape(kept), denom / 2.0))};
                          });
}
Tensor var(const Tensor& a) { return var(a, {}, 1, false); }

Tensor std_dev(const Tensor& a, const Dims& dims, int64_t correction, bool keepdim) {
  return sqrt(var(a, dims, correction, keepdim));
}
Tensor std_dev(const Tensor& a) { return std_dev(a, {}, 1, false); }

Tensor sum_to(const Tensor& a, const Shape& shape) {
  if (a.shape() == shape) return a;
  const int64_t n = a.dim(), m = int64_t(shape.size());
  ANVIL_CHECK(m <= n, ShapeError, "sum_to: cannot sum shape ", to_string(a.shape()), " to ",
              to_string(shape));
  Dims dims;
  for (int64_t i = 0; i < n; ++i) {
    int64_t j = i - (n - m);
    if (j < 0) {
      dims.push_back(i);
    } else if (shape[j] == 1 && a.shape()[i] != 1) {
      dims.push_back(i);
    } else {
      ANVIL_CHECK(shape[j] == a.shape()[i], ShapeError, "sum_to: cannot sum shape ",
                  to_string(a.shape()), " to ", to_string(shape));
    }
  }
  // Undoes broadcasting in a's dtype, also under autocast (where sum would give float32).
  amp::detail::AutocastExclude no_autocast;
  Tensor r = dims.empty() ? a : sum(a, dims, true);
  return r.reshape(shape);
}

}  // namespace anvil
