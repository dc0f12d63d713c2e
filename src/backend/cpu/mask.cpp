// CPU triangles (tril, triu): one pass over the rows, copying the kept run of each row and
// zeroing the rest.
#include <algorithm>

#include "backend/cpu/loops.h"
#include "backend/mask_kernels.h"

namespace anvil::cpu {
namespace {
using backend::TriangleArgs;

template <class T>
void triangle_rows(const TriangleArgs& a, const Tensor& out, const Tensor& x) {
  const T* xs = x.data<T>();
  T* ys = out.data<T>();
  parallel_for(a.batch * a.rows, a.cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t i = r % a.rows;
      // Kept columns: j <= i + diagonal (lower) or j >= i + diagonal (upper), clipped to the row.
      const int64_t edge = i + a.diagonal;
      const int64_t begin = a.lower ? 0 : std::clamp<int64_t>(edge, 0, a.cols);
      const int64_t end = a.lower ? std::clamp<int64_t>(edge + 1, 0, a.cols) : a.cols;
      const T* src = xs + r * a.cols;
      T* dst = ys + r * a.cols;
      for (int64_t j = 0; j < a.cols; ++j) dst[j] = (j >= begin && j < end) ? src[j] : T(0);
    }
  });
}

void triangle_cpu(const TriangleArgs& a, const Tensor& out, const Tensor& x) {
  ANVIL_DISPATCH_ALL(x.dtype(), "triangle", [&] { triangle_rows<scalar_t>(a, out, x); });
}

ANVIL_REGISTER_KERNEL(backend::triangle_kernels, CPU, &triangle_cpu);

}  // namespace
}  // namespace anvil::cpu
