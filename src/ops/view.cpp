// Views: new shapes and strides over the same storage. Each is differentiable; the backward
// maps the gradient back to the base's shape.
#include <algorithm>
#include <numeric>

#include "anvil/autograd/node.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/reduction.h"

namespace anvil {
namespace {

Tensor as_view(const Tensor& base, Shape shape, Strides strides, int64_t offset) {
  return Tensor::make_view(base.storage(), std::move(shape), std::move(strides), offset,
                           base.dtype());
}

// Resolves one -1 in `shape` against numel; throws ShapeError for mismatches.
Shape infer_shape(const Shape& shape, int64_t n, const char* op, const Shape& from) {
  Shape s = shape;
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      ANVIL_CHECK(infer < 0, ShapeError, op, ": only one dimension can be -1, got ", to_string(shape));
      infer = int64_t(i);
    } else {
      ANVIL_CHECK(s[i] >= 0, ShapeError, op, ": invalid shape ", to_string(shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    ANVIL_CHECK(known != 0 && n % known == 0, ShapeError, op, ": shape ", to_string(shape),
                " is invalid for input of shape ", to_string(from), " (", n, " elements)");
    s[infer] = n / known;
  }
  ANVIL_CHECK(numel(s) == n, ShapeError, op, ": shape ", to_string(shape),
              " is invalid for input of shape ", to_string(from), " (", n, " elements)");
  return s;
}

// Strides that let `shape` view memory laid out as (old_shape, old_strides), or empty if none
// exist (PyTorch's computeStride).
bool view_strides(const Shape& old_shape, const Strides& old_strides, const Shape& shape,
                  Strides& out) {
  out.assign(shape.size(), 0);
  if (numel(old_shape) == 0 || old_shape.empty()) {  // nothing, or one element, to lay out
    out = contiguous_strides(shape);
    return true;
  }
  int64_t view_d = int64_t(shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = int64_t(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    if (d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

}  // namespace

Tensor Tensor::view(const Shape& shape_in) const {
  Shape s = infer_shape(shape_in, numel(), "view", shape());
  Strides st;
  ANVIL_CHECK(view_strides(shape(), strides(), s, st), ShapeError, "view: size ", to_string(s),
              " is not compatible with input of shape ", to_string(shape()), " and strides ",
              to_string(strides()), "; use reshape() instead");
  Shape in_shape = shape();
  return autograd::record("ViewBackward", as_view(*this, s, st, offset()), {*this},
                          [in_shape](const Tensor& g) -> std::vector<Tensor> {
                            return {g.reshape(in_shape)};
                          });
}

Tensor Tensor::reshape(const Shape& shape_in) const {
  Shape s = infer_shape(shape_in, numel(), "reshape", shape());
  Strides st;
  if (view_strides(shape(), strides(), s, st)) return view(s);
  return contiguous().view(s);
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  int64_t s = wrap_dim(start_dim, dim(), "flatten"), e = wrap_dim(end_dim, dim(), "flatten");
  ANVIL_CHECK(s <= e, IndexError, "flatten: start_dim ", start_dim, " comes after end_dim ", end_dim);
  Shape ns(shape().begin(), shape().begin() + s);
  int64_t m = 1;
  for (int64_t i = s; i <= e; ++i) m *= shape()[i];
  ns.push_back(m);
  ns.insert(ns.end(), shape().begin() + e + 1, shape().end());
  return reshape(ns);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  const int64_t n = dim();
  ANVIL_CHECK(int64_t(dims.size()) == n, ShapeError, "permute: expected ", n,
              " dims for a tensor of shape ", to_string(shape()), ", got ", to_string(dims));
  std::vector<int64_t> d(n), inv(n);
  std::vector<bool> used(n, false);
  for (int64_t i = 0; i < n; ++i) {
    d[i] = wrap_dim(dims[i], n, "permute");
    ANVIL_CHECK(!used[d[i]], IndexError, "permute: dim ", d[i], " repeats in ", to_string(dims));
    used[d[i]] = true;
    inv[d[i]] = i;
  }
  Shape s(n);
  Strides st(n);
  for (int64_t i = 0; i < n; ++i) {
    s[i] = shape()[d[i]];
    st[i] = strides()[d[i]];
  }
  return autograd::record("PermuteBackward", as_view(*this, s, st, offset()), {*this},
                          [inv](const Tensor& g) -> std::vector<Tensor> { return {g.permute(inv)}; });
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  const int64_t n = dim();
  if (n == 0) return view({});
  std::vector<int64_t> p(n);
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[wrap_dim(d0, n, "transpose")], p[wrap_dim(d1, n, "transpose")]);
  return permute(p);
}

Tensor Tensor::t() const {
  ANVIL_CHECK(dim() <= 2, ShapeError, "t: expects a tensor with <= 2 dims, got shape ",
              to_string(shape()));
  return dim() < 2 ? view(shape()) : transpose(0, 1);
}

Tensor Tensor::slice(int64_t dim_in, int64_t start, int64_t end, int64_t step) const {
  int64_t d = wrap_dim(dim_in, dim(), "slice");
  ANVIL_CHECK(step > 0, ValueError, "slice: step must be positive, got ", step);
  int64_t n = shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = shape();
  Strides st = strides();
  s[d] = (end - start + step - 1) / step;
  st[d] *= step;
  Tensor out = as_view(*this, s, st, offset() + start * strides()[d]);
  if (!autograd::needs_grad({this})) return out;
  return autograd::record(std::make_shared<autograd::SliceNode>(d, start, end, step), out, {*this});
}

Tensor Tensor::narrow(int64_t dim_in, int64_t start, int64_t length) const {
  int64_t d = wrap_dim(dim_in, dim(), "narrow");
  int64_t n = shape()[d];
  if (start < 0) start += n;
  ANVIL_CHECK(start >= 0 && length >= 0 && start + length <= n, IndexError, "narrow: range [",
              start, ", ", start + length, ") is outside dimension ", d, " of size ", n);
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t dim_in, int64_t index) const {
  int64_t d = wrap_dim(dim_in, dim(), "select");
  int64_t n = shape()[d];
  ANVIL_CHECK(index >= -n && index < n, IndexError, "select: index ", index,
              " is out of range for dimension ", d, " of size ", n);
  if (index < 0) index += n;
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::squeeze() const {
  Shape s;
  for (auto x : shape())
    if (x != 1) s.push_back(x);
  return view(s);
}

Tensor Tensor::squeeze(int64_t dim_in) const {
  if (dim() == 0) return view({});
  int64_t d = wrap_dim(dim_in, dim(), "squeeze");
  if (shape()[d] != 1) return view(shape());
  Shape s = shape();
  s.erase(s.begin() + d);
  return view(s);
}

Tensor Tensor::unsqueeze(int64_t dim_in) const {
  int64_t d = wrap_dim(dim_in, dim() + 1, "unsqueeze");
  Shape s = shape();
  s.insert(s.begin() + d, 1);
  return view(s);
}

Tensor Tensor::expand(const Shape& shape_in) const {
  const int64_t n = int64_t(shape_in.size()), m = dim();
  ANVIL_CHECK(n >= m, ShapeError, "expand: the target shape ", to_string(shape_in),
              " has fewer dims than the tensor's shape ", to_string(shape()));
  Shape s(n);
  Strides st(n);
  for (int64_t i = n - 1; i >= 0; --i) {
    int64_t j = i - (n - m);
    int64_t want = shape_in[i];
    if (j >= 0) {
      int64_t have = shape()[j];
      if (want == -1) want = have;
      ANVIL_CHECK(have == want || have == 1, ShapeError, "expand: the expanded size ", want,
                  " must match the existing size ", have, " at dimension ", i, " (shape ",
                  to_string(shape()), " to ", to_string(shape_in), ")");
      s[i] = want;
      st[i] = have == want ? strides()[j] : 0;
    } else {
      ANVIL_CHECK(want >= 0, ShapeError, "expand: -1 is not allowed for the new leading dimension ",
                  i, " in ", to_string(shape_in));
      s[i] = want;
      st[i] = 0;
    }
  }
  // The engine sums the gradient back to this tensor's shape.
  return autograd::record("ExpandBackward", as_view(*this, s, st, offset()), {*this},
                          [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
}

}  // namespace anvil
