// Joining and splitting along a dim. cat copies each input into a narrow() view of its
// output, and split/chunk return narrow() views, so no backend needs a kernel of its own.
#include "anvil/ops/join.h"

#include "anvil/autograd/node.h"
#include "ops/checks.h"

namespace anvil {
namespace {

// torch.cat skips 1-D empty tensors whatever the other shapes are (a legacy rule kept so that
// an empty accumulator can start a loop of cats).
bool skipped_by_cat(const Tensor& t) { return t.dim() == 1 && t.numel() == 0; }

}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  ANVIL_CHECK(!tensors.empty(), ValueError, "cat: expected a non-empty list of tensors, got none");
  for (const Tensor& t : tensors) ops::check_defined(t, "cat", "tensors");
  ops::check_same_device(tensors, "cat");
  DType dtype = tensors[0].dtype();
  for (const Tensor& t : tensors) dtype = promote_types(dtype, t.dtype());

  const Tensor* ref = nullptr;  // the first tensor that takes part
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    ANVIL_CHECK(t.dim() > 0, ShapeError,
                "cat: expected tensors with at least 1 dim, got a "
                "zero-dimensional tensor at position ",
                i);
    if (!ref && !skipped_by_cat(t)) ref = &t;
  }
  if (!ref) return Tensor::empty({0}, TensorOptions(dtype).device(tensors[0].device()));

  const int64_t d = wrap_dim(dim, ref->dim(), "cat");
  Shape out_shape = ref->shape();
  out_shape[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (skipped_by_cat(t)) continue;
    bool match = t.dim() == ref->dim();
    for (int64_t k = 0; match && k < t.dim(); ++k)
      if (k != d && t.shape()[k] != ref->shape()[k]) match = false;
    ANVIL_CHECK(match, ShapeError, "cat: expected tensor ", i, " to match shape ",
                to_string(ref->shape()), " except in dimension ", d, ", got shape ",
                to_string(t.shape()));
    out_shape[d] += t.shape()[d];
  }

  Tensor out = Tensor::empty(out_shape, TensorOptions(dtype).device(ref->device()));
  std::vector<int64_t> starts(tensors.size(), -1);  // -1: skipped
  {
    NoGradGuard no_grad;
    int64_t start = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const Tensor& t = tensors[i];
      if (skipped_by_cat(t)) continue;
      starts[i] = start;
      if (t.numel() > 0) out.narrow(d, start, t.shape()[d]).copy_(t);
      start += t.shape()[d];
    }
  }
  std::vector<int64_t> lengths;
  for (const Tensor& t : tensors) lengths.push_back(t.dim() > d ? t.shape()[d] : 0);
  return autograd::record(
      "CatBackward", out, tensors, [d, starts, lengths](const Tensor& g) -> std::vector<Tensor> {
        std::vector<Tensor> grads;
        for (size_t i = 0; i < starts.size(); ++i)
          grads.push_back(starts[i] < 0 ? Tensor() : g.narrow(d, starts[i], lengths[i]));
        return grads;
      });
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  ANVIL_CHECK(!tensors.empty(), ValueError,
              "stack: expected a non-empty list of tensors, got none");
  for (const Tensor& t : tensors) ops::check_defined(t, "stack", "tensors");
  for (size_t i = 1; i < tensors.size(); ++i)
    ANVIL_CHECK(tensors[i].shape() == tensors[0].shape(), ShapeError,
                "stack: expected each tensor to have shape ", to_string(tensors[0].shape()),
                " (that of tensor 0), got shape ", to_string(tensors[i].shape()), " at position ",
                i);
  const int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(t.unsqueeze(d));
  return cat(parts, d);
}

std::vector<Tensor> split(const Tensor& a, int64_t split_size, int64_t dim) {
  ops::check_defined(a, "split", "input");
  ANVIL_CHECK(a.dim() > 0, ShapeError, "split: expected a tensor with at least 1 dim, got shape ",
              to_string(a.shape()));
  const int64_t d = wrap_dim(dim, a.dim(), "split");
  const int64_t n = a.shape()[d];
  ANVIL_CHECK(split_size > 0 || (split_size == 0 && n == 0), ValueError,
              "split: expected a positive split_size (0 only for an empty dimension), got ",
              split_size, " for dimension ", d, " of size ", n);
  if (n == 0) return {a.narrow(d, 0, 0)};
  std::vector<Tensor> parts;
  for (int64_t start = 0; start < n; start += split_size)
    parts.push_back(a.narrow(d, start, std::min(split_size, n - start)));
  return parts;
}

std::vector<Tensor> split(const Tensor& a, const std::vector<int64_t>& sizes, int64_t dim) {
  ops::check_defined(a, "split", "input");
  ANVIL_CHECK(a.dim() > 0, ShapeError, "split: expected a tensor with at least 1 dim, got shape ",
              to_string(a.shape()));
  const int64_t d = wrap_dim(dim, a.dim(), "split");
  const int64_t n = a.shape()[d];
  int64_t total = 0;
  for (int64_t s : sizes) {
    ANVIL_CHECK(s >= 0, ValueError, "split: expected non-negative split sizes, got ",
                to_string(sizes));
    total += s;
  }
  ANVIL_CHECK(total == n, ShapeError, "split: expected split sizes that sum to ", n,
              " (the size of dimension ", d, " of shape ", to_string(a.shape()), "), got ",
              to_string(sizes), " (sum ", total, ")");
  std::vector<Tensor> parts;
  int64_t start = 0;
  for (int64_t s : sizes) {
    parts.push_back(a.narrow(d, start, s));
    start += s;
  }
  return parts;
}

std::vector<Tensor> chunk(const Tensor& a, int64_t chunks, int64_t dim) {
  ops::check_defined(a, "chunk", "input");
  ANVIL_CHECK(chunks > 0, ValueError, "chunk: expected a positive number of chunks, got ", chunks);
  ANVIL_CHECK(a.dim() > 0, ShapeError, "chunk: expected a tensor with at least 1 dim, got shape ",
              to_string(a.shape()));
  const int64_t d = wrap_dim(dim, a.dim(), "chunk");
  const int64_t n = a.shape()[d];
  // An empty dim gives `chunks` empty views, as torch.chunk does.
  if (n == 0) return split(a, std::vector<int64_t>(size_t(chunks), 0), d);
  return split(a, (n + chunks - 1) / chunks, d);
}

}  // namespace anvil
