// Gathering and scattering by integer indices: checks, dispatch and gradients. The gradient of
// a gather is a scatter-add into zeros and the other way round; the index values themselves are
// checked by the kernels (before they write anything).
#include "anvil/ops/indexing.h"

#include "amp/autocast_ops.h"
#include "anvil/autograd/node.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/reduction.h"
#include "backend/index_kernels.h"
#include "ops/checks.h"

namespace anvil {
namespace {

void check_operands(const Tensor& a, const Tensor& index, const char* op) {
  ops::check_defined(a, op, "input");
  ops::check_defined(index, op, "index");
  ops::check_index(index, op);
  ops::check_same_device({a, index}, op);
}

// The kernels below run without autograd on contiguous operands.

Tensor select_rows(const Tensor& a, int64_t d, const Tensor& index, const char* op) {
  NoGradGuard no_grad;
  Shape shape = a.shape();
  shape[size_t(d)] = index.numel();
  Tensor out = Tensor::empty(shape, a.options());
  backend::index_select_kernels[a.device()](op, out, a.contiguous(), d, index.contiguous());
  return out;
}

// zeros(shape) with src's [outer, k, inner] rows added at index along d.
Tensor add_rows(const Shape& shape, int64_t d, const Tensor& index, const Tensor& src,
                const char* op) {
  NoGradGuard no_grad;
  Tensor out = zeros(shape, src.options());
  backend::index_add_kernels[src.device()](op, out, d, index.contiguous(), src.contiguous());
  return out;
}

Tensor gather_raw(const Tensor& a, int64_t d, const Tensor& index, const char* op) {
  NoGradGuard no_grad;
  Tensor out = Tensor::empty(index.shape(), a.options());
  backend::gather_kernels[a.device()](op, out, a.contiguous(), d, index.contiguous());
  return out;
}

// `base` (copied, contiguous) with src added at index along d.
Tensor scatter_add_raw(const Tensor& base, int64_t d, const Tensor& index, const Tensor& src,
                       const char* op) {
  NoGradGuard no_grad;
  Tensor out = base.clone();
  backend::scatter_add_kernels[base.device()](op, out, d, index.contiguous(), src.contiguous());
  return out;
}

// index.size(k) <= t.size(k) for every dim k (except `skip`, when >= 0).
void check_fits(const Tensor& index, const Tensor& t, int64_t skip, const char* op,
                const char* what) {
  ANVIL_CHECK(index.dim() == t.dim(), ShapeError, op, ": expected 'index' with ", t.dim(),
              " dims (as ", what, " of shape ", to_string(t.shape()), "), got shape ",
              to_string(index.shape()));
  for (int64_t k = 0; k < t.dim(); ++k) {
    if (k == skip) continue;
    ANVIL_CHECK(index.shape()[k] <= t.shape()[k], ShapeError, op,
                ": expected 'index' of size <= ", t.shape()[k], " at dimension ", k, " (", what,
                " has shape ", to_string(t.shape()), "), got shape ", to_string(index.shape()));
  }
}

}  // namespace

Tensor index_select(const Tensor& a, int64_t dim, const Tensor& index) {
  const char* op = "index_select";
  check_operands(a, index, op);
  ANVIL_CHECK(a.dim() > 0, ShapeError, op, ": expected an input with at least 1 dim, got shape ",
              to_string(a.shape()));
  ANVIL_CHECK(index.dim() <= 1, ShapeError, op, ": expected a 0-D or 1-D 'index', got shape ",
              to_string(index.shape()));
  const int64_t d = wrap_dim(dim, a.dim(), op);
  Tensor out = select_rows(a, d, index, op);
  Shape in_shape = a.shape();
  return autograd::record("IndexSelectBackward", out, {a},
                          [in_shape, d, index](const Tensor& g) -> std::vector<Tensor> {
                            return {add_rows(in_shape, d, index, g, "index_select backward")};
                          });
}

Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx) {
  const char* op = "embedding";
  ops::check_defined(weight, op, "weight");
  ops::check_defined(indices, op, "indices");
  ops::check_index(indices, op, "indices");
  ops::check_same_device({weight, indices}, op);
  ops::check_dim(weight, 2, op, "weight");
  const int64_t num = weight.shape()[0];
  ANVIL_CHECK(padding_idx < num, ValueError, op, ": expected padding_idx < ", num,
              " (the number of embeddings) or negative for none, got ", padding_idx);
  Tensor flat = indices.reshape({-1});
  Shape out_shape = indices.shape();
  out_shape.push_back(weight.shape()[1]);
  Tensor out = select_rows(weight, 0, flat, op).view(out_shape);
  Shape w_shape = weight.shape();
  return autograd::record("EmbeddingBackward", out, {weight},
                          [w_shape, flat, padding_idx](const Tensor& g) -> std::vector<Tensor> {
                            Tensor rows = g.reshape({-1, w_shape[1]});
                            if (padding_idx >= 0)
                              rows = mul(rows, ne(flat, padding_idx).unsqueeze(1).to(g.dtype()));
                            return {add_rows(w_shape, 0, flat, rows, "embedding backward")};
                          });
}

Tensor gather(const Tensor& a, int64_t dim, const Tensor& index) {
  const char* op = "gather";
  check_operands(a, index, op);
  if (a.dim() == 0 && index.dim() == 0)  // torch allows scalars: treat them as one element
    return gather(a.reshape({1}), dim, index.reshape({1})).reshape({});
  const int64_t d = wrap_dim(dim, a.dim(), op);
  check_fits(index, a, d, op, "input");
  Tensor out = gather_raw(a, d, index, op);
  Shape in_shape = a.shape();
  return autograd::record("GatherBackward", out, {a},
                          [in_shape, d, index](const Tensor& g) -> std::vector<Tensor> {
                            Tensor z = zeros(in_shape, g.options());
                            return {scatter_add_raw(z, d, index, g, "gather backward")};
                          });
}

Tensor scatter_add(const Tensor& a, int64_t dim, const Tensor& index, const Tensor& src) {
  if (amp::detail::autocast_active({&a, &index, &src}))
    return amp::detail::run_autocast(
        amp::detail::CastPolicy::Promote, {a, index, src},
        [&](const auto& t) { return scatter_add(t[0], dim, t[1], t[2]); });
  const char* op = "scatter_add";
  check_operands(a, index, op);
  ops::check_defined(src, op, "src");
  ops::check_same_device({a, src}, op);
  ANVIL_CHECK(src.dtype() == a.dtype(), DTypeError, op, ": expected 'src' of dtype ",
              dtype_name(a.dtype()), " (that of the input), got ", dtype_name(src.dtype()));
  if (a.dim() == 0 && index.dim() == 0 && src.dim() == 0)
    return scatter_add(a.reshape({1}), dim, index.reshape({1}), src.reshape({1})).reshape({});
  const int64_t d = wrap_dim(dim, a.dim(), op);
  check_fits(index, a, d, op, "input");
  check_fits(index, src, -1, op, "src");
  Tensor out = scatter_add_raw(a, d, index, src, op);
  Shape src_shape = src.shape();
  return autograd::record(
      "ScatterAddBackward", out, {a, src},
      [d, index, src_shape](const Tensor& g) -> std::vector<Tensor> {
        Tensor gs = gather_raw(g, d, index, "scatter_add backward");
        if (gs.shape() != src_shape) {  // src entries the index does not reach get zero
          Tensor full = zeros(src_shape, g.options());
          Tensor part = full;
          for (int64_t k = 0; k < gs.dim(); ++k) part = part.narrow(k, 0, gs.shape()[k]);
          part.copy_(gs);
          gs = full;
        }
        return {g, gs};
      });
}

Tensor one_hot(const Tensor& indices, int64_t num_classes) {
  const char* op = "one_hot";
  ops::check_defined(indices, op, "indices");
  ops::check_index(indices, op, "indices");
  ANVIL_CHECK(num_classes >= -1, ValueError, op,
              ": expected num_classes >= 0 (or -1 to infer it), got ", num_classes);
  NoGradGuard no_grad;
  if (indices.numel() == 0) {
    ANVIL_CHECK(num_classes >= 0, ValueError, op,
                ": cannot infer num_classes from an empty tensor (shape ",
                to_string(indices.shape()), "); pass num_classes");
  } else {
    int64_t lo = amin(indices, {}).item<int64_t>(), hi = amax(indices, {}).item<int64_t>();
    if (num_classes < 0) num_classes = hi + 1;
    int64_t bad = lo < 0 ? lo : hi;
    ANVIL_CHECK(lo >= 0 && hi < num_classes, IndexError, op, ": index ", bad,
                " is out of range for ", num_classes, " classes (expected 0 <= index < ",
                num_classes, ")");
  }
  Tensor classes =
      arange(0, num_classes, 1, TensorOptions(indices.dtype()).device(indices.device()));
  return eq(indices.unsqueeze(-1), classes).to(kInt64);
}

}  // namespace anvil
