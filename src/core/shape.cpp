#include "anvil/core/shape.h"

#include <algorithm>

#include "anvil/core/error.h"

namespace anvil {

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

Strides contiguous_strides(const Shape& s) {
  Strides st(s.size());
  int64_t acc = 1;
  for (int64_t i = int64_t(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(s[i], 1);
  }
  return st;
}

Strides channels_last_strides(const Shape& s) {
  ANVIL_CHECK(s.size() == 4, ShapeError, "channels_last: expected a 4-D [N, C, H, W] shape, got ",
              to_string(s));
  const int64_t c = std::max<int64_t>(s[1], 1), w = std::max<int64_t>(s[3], 1),
                h = std::max<int64_t>(s[2], 1);
  return {h * w * c, 1, w * c, c};
}

std::string to_string(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t lo = ndim > 0 ? -ndim : -1, hi = ndim > 0 ? ndim - 1 : 0;
  if (dim < lo || dim > hi)
    throw IndexError(detail::cat(op, ": dimension out of range (expected to be in range of [", lo,
                                 ", ", hi, "], but got ", dim, ")"));
  return dim < 0 ? dim + std::max<int64_t>(ndim, 1) : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape r(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw ShapeError(detail::cat(op, ": shapes ", to_string(a), " and ", to_string(b),
                                   " do not broadcast (dimension ", i, ": ", da, " vs ", db, ")"));
    r[i] = da == 1 ? db : da;
  }
  return r;
}

}  // namespace anvil
