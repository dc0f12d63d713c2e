// CPU gathers and scatters. Index values are checked serially before any parallel loop (so
// nothing throws inside OpenMP). Scatters parallelise over the coordinates that the index does
// not choose, so two threads never add into the same element.
#include <cstring>

#include "backend/cpu/loops.h"
#include "backend/index_kernels.h"

namespace anvil::cpu {
namespace {

// The extents before, at and after `dim` of a shape.
struct Around {
  int64_t outer = 1, k = 1, inner = 1;
};
Around around(const Shape& s, int64_t dim) {
  Around g;
  for (int64_t d = 0; d < int64_t(s.size()); ++d) {
    if (d < dim) g.outer *= s[d];
    if (d == dim) g.k = s[d];
    if (d > dim) g.inner *= s[d];
  }
  return g;
}

// For each flat position over dims [lo, hi) of `shape`, the element offset of those
// coordinates in a tensor with `strides`.
std::vector<int64_t> offsets(const Shape& shape, const Strides& strides, int64_t lo, int64_t hi) {
  std::vector<int64_t> off{0};
  for (int64_t d = lo; d < hi; ++d) {
    std::vector<int64_t> next;
    next.reserve(off.size() * size_t(shape[d]));
    for (int64_t base : off)
      for (int64_t c = 0; c < shape[d]; ++c) next.push_back(base + c * strides[d]);
    off = std::move(next);
  }
  return off;
}

template <class I>
void check_range(const char* op, const Tensor& index, int64_t dim, int64_t size) {
  const I* idx = index.data<I>();
  for (int64_t j = 0, n = index.numel(); j < n; ++j) {
    int64_t v = int64_t(idx[j]);
    ANVIL_CHECK(v >= 0 && v < size, IndexError, op, ": index ", v,
                " is out of range for dimension ", dim, " of size ", size,
                " (expected 0 <= index < ", size, ")");
  }
}

void check_indices(const char* op, const Tensor& index, int64_t dim, int64_t size) {
  ANVIL_DISPATCH_INDEX(index.dtype(), op, [&] { check_range<scalar_t>(op, index, dim, size); });
}

// Runs f(o_begin, o_end, i_begin, i_end) on disjoint blocks of the [outer, inner] grid, split
// along whichever side is longer; each call sees every j between them.
template <class F>
void parallel_grid(int64_t outer, int64_t inner, int64_t k, F f) {
  if (outer >= inner) {
    parallel_for(outer, k * inner, [&](int64_t b, int64_t e) { f(b, e, int64_t(0), inner); });
  } else {
    parallel_for(inner, k * outer, [&](int64_t b, int64_t e) { f(int64_t(0), outer, b, e); });
  }
}

void index_select_cpu(const char* op, const Tensor& out, const Tensor& a, int64_t dim,
                      const Tensor& index) {
  const int64_t n = a.shape()[size_t(dim)];
  check_indices(op, index, dim, n);
  Around g = around(out.shape(), dim);
  const size_t row_bytes = size_t(g.inner) * a.element_size();
  const char* src = static_cast<const char*>(a.data_ptr());
  char* dst = static_cast<char*>(out.data_ptr());
  ANVIL_DISPATCH_INDEX(index.dtype(), op, [&] {
    const scalar_t* idx = index.data<scalar_t>();
    parallel_for(g.outer * g.k, g.inner, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        int64_t o = r / g.k, j = r % g.k;
        std::memcpy(dst + size_t(r) * row_bytes, src + size_t(o * n + int64_t(idx[j])) * row_bytes,
                    row_bytes);
      }
    });
  });
}

void index_add_cpu(const char* op, const Tensor& out, int64_t dim, const Tensor& index,
                   const Tensor& src) {
  const int64_t n = out.shape()[size_t(dim)];
  check_indices(op, index, dim, n);
  Around g = around(src.shape(), dim);
  ANVIL_DISPATCH_NUMERIC(out.dtype(), op, [&] {
    using T = scalar_t;
    using C = compute_t<T>;
    T* y = out.data<T>();
    const T* x = src.data<T>();
    ANVIL_DISPATCH_INDEX(index.dtype(), op, [&] {
      const scalar_t* idx = index.data<scalar_t>();
      parallel_grid(g.outer, g.inner, g.k, [&](int64_t ob, int64_t oe, int64_t ib, int64_t ie) {
        for (int64_t o = ob; o < oe; ++o)
          for (int64_t j = 0; j < g.k; ++j) {
            T* yrow = y + (o * n + int64_t(idx[j])) * g.inner;
            const T* xrow = x + (o * g.k + j) * g.inner;
            for (int64_t i = ib; i < ie; ++i) yrow[i] = T(C(yrow[i]) + C(xrow[i]));
          }
      });
    });
  });
}

// Element offsets of the index's coordinates (all dims but `dim`) in a tensor with `strides`.
struct GridOffsets {
  std::vector<int64_t> outer, inner;
};
GridOffsets grid_offsets(const Shape& index_shape, const Strides& strides, int64_t dim) {
  return {offsets(index_shape, strides, 0, dim),
          offsets(index_shape, strides, dim + 1, int64_t(index_shape.size()))};
}

void gather_cpu(const char* op, const Tensor& out, const Tensor& a, int64_t dim,
                const Tensor& index) {
  check_indices(op, index, dim, a.shape()[size_t(dim)]);
  Around g = around(index.shape(), dim);
  GridOffsets ao = grid_offsets(index.shape(), a.strides(), dim);
  const int64_t a_step = a.strides()[size_t(dim)];
  ANVIL_DISPATCH_ALL(a.dtype(), op, [&] {
    using T = scalar_t;
    T* y = out.data<T>();
    const T* x = a.data<T>();
    ANVIL_DISPATCH_INDEX(index.dtype(), op, [&] {
      const scalar_t* idx = index.data<scalar_t>();
      parallel_for(g.outer * g.k, g.inner, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const int64_t o = r / g.k;
          const T* xo = x + ao.outer[size_t(o)];
          for (int64_t i = 0; i < g.inner; ++i) {
            int64_t p = r * g.inner + i;
            y[p] = xo[int64_t(idx[p]) * a_step + ao.inner[size_t(i)]];
          }
        }
      });
    });
  });
}

void scatter_add_cpu(const char* op, const Tensor& out, int64_t dim, const Tensor& index,
                     const Tensor& src) {
  check_indices(op, index, dim, out.shape()[size_t(dim)]);
  Around g = around(index.shape(), dim);
  GridOffsets yo = grid_offsets(index.shape(), out.strides(), dim);
  GridOffsets xo = grid_offsets(index.shape(), src.strides(), dim);
  const int64_t y_step = out.strides()[size_t(dim)], x_step = src.strides()[size_t(dim)];
  ANVIL_DISPATCH_NUMERIC(out.dtype(), op, [&] {
    using T = scalar_t;
    using C = compute_t<T>;
    T* y = out.data<T>();
    const T* x = src.data<T>();
    ANVIL_DISPATCH_INDEX(index.dtype(), op, [&] {
      const scalar_t* idx = index.data<scalar_t>();
      parallel_grid(g.outer, g.inner, g.k, [&](int64_t ob, int64_t oe, int64_t ib, int64_t ie) {
        for (int64_t o = ob; o < oe; ++o)
          for (int64_t j = 0; j < g.k; ++j)
            for (int64_t i = ib; i < ie; ++i) {
              int64_t p = (o * g.k + j) * g.inner + i;
              T& dst = y[yo.outer[size_t(o)] + int64_t(idx[p]) * y_step + yo.inner[size_t(i)]];
              dst = T(C(dst) + C(x[xo.outer[size_t(o)] + j * x_step + xo.inner[size_t(i)]]));
            }
      });
    });
  });
}

ANVIL_REGISTER_KERNEL(backend::index_select_kernels, CPU, &index_select_cpu);
ANVIL_REGISTER_KERNEL(backend::index_add_kernels, CPU, &index_add_cpu);
ANVIL_REGISTER_KERNEL(backend::gather_kernels, CPU, &gather_cpu);
ANVIL_REGISTER_KERNEL(backend::scatter_add_kernels, CPU, &scatter_add_cpu);

}  // namespace
}  // namespace anvil::cpu
