// CPU rotary position embedding: rows of x in parallel, each pair (i, i + D/2) rotated by its
// row's cos and sin (found through their broadcast strides).
#include <vector>

#include "backend/cpu/loops.h"
#include "backend/rotary_kernels.h"

namespace anvil::cpu {
namespace {

// Element offset of row `r` (row-major over `sizes`) in a tensor with `strides`.
int64_t row_offset(int64_t r, const std::vector<int64_t>& sizes, const Strides& strides) {
  int64_t off = 0;
  for (int64_t d = int64_t(sizes.size()) - 1; d >= 0; --d) {
    off += (r % sizes[size_t(d)]) * strides[size_t(d)];
    r /= sizes[size_t(d)];
  }
  return off;
}

template <class T>
void rotate_rows(bool transpose, const Tensor& out, const Tensor& x, const Tensor& cos,
                 const Tensor& sin) {
  using C = compute_t<T>;
  const int64_t d = x.size(-1), h = d / 2, rows = x.numel() / d;
  const std::vector<int64_t> lead(x.shape().begin(), x.shape().end() - 1);
  const T* xs = x.data<T>();
  const T* cs = cos.data<T>();
  const T* ss = sin.data<T>();
  T* ys = out.data<T>();
  parallel_for(rows, d, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = xs + r * d;
      const T* c = cs + row_offset(r, lead, cos.strides());
      const T* s = ss + row_offset(r, lead, sin.strides());
      T* yr = ys + r * d;
      for (int64_t i = 0; i < h; ++i) {
        const C a = C(xr[i]), b = C(xr[i + h]);
        if (!transpose) {
          yr[i] = T(a * C(c[i]) - b * C(s[i]));
          yr[i + h] = T(b * C(c[i + h]) + a * C(s[i + h]));
        } else {
          yr[i] = T(a * C(c[i]) + b * C(s[i + h]));
          yr[i + h] = T(b * C(c[i + h]) - a * C(s[i]));
        }
      }
    }
  });
}

void rotary_cpu(bool transpose, const Tensor& out, const Tensor& x, const Tensor& cos,
                const Tensor& sin) {
  if (x.numel() == 0) return;
  ANVIL_DISPATCH_FLOAT(x.dtype(), "rotary",
                       [&] { rotate_rows<scalar_t>(transpose, out, x, cos, sin); });
}

ANVIL_REGISTER_KERNEL(backend::rotary_kernels, CPU, &rotary_cpu);

}  // namespace
}  // namespace anvil::cpu
