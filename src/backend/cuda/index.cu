// CUDA gathers and scatters by int32/int64 indices. Index values are checked on the device
// without waiting for the verdict (index_check.cuh): a bad index is recorded and raised at the
// next synchronisation. The kernels never touch memory through a bad index: gathers write 0
// for it, and scatters, which work in place, write nothing at all when the check found one
// (as the CPU refuses before writing). Gathers copy elements by size; scatters add with
// atomics, so duplicate indices accumulate in an unspecified order (floating results may
// differ from the CPU's in the last bits), except index_add in deterministic mode, which
// sorts the index instead (index_add_sorted.h).
#include "anvil/core/determinism.h"
#include "backend/cuda/index_add_sorted.h"
#include "backend/cuda/index_check.cuh"
#include "backend/index_kernels.h"

namespace anvil::cuda {
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

// Enqueues the range check of `index` against dimension `dim` of size `size`.
RangeCheck check_indices(const char* op, const Tensor& index, int64_t dim, int64_t size) {
  const ErrorSite site = error_site(index.device().index, op);
  RangeCheck check;
  ANVIL_DISPATCH_INDEX(index.dtype(), op, [&] {
    check = check_index_range<scalar_t>(index, size, site, ErrorCode::IndexOutOfRange, dim);
  });
  return check;
}

__device__ inline bool in_range(int64_t v, int64_t size) { return v >= 0 && v < size; }

// An unsigned type of each element size, for gathers that only move bits.
template <size_t N> struct Bits;
template <> struct Bits<1> { using type = uint8_t; };
template <> struct Bits<2> { using type = uint16_t; };
template <> struct Bits<4> { using type = uint32_t; };
template <> struct Bits<8> { using type = unsigned long long; };

// Calls f.template operator()<B>() with B the unsigned type of `size` bytes.
template <class F>
void dispatch_bits(size_t size, const char* op, F&& f) {
  switch (size) {
    case 1: f(typename Bits<1>::type{}); break;
    case 2: f(typename Bits<2>::type{}); break;
    case 4: f(typename Bits<4>::type{}); break;
    case 8: f(typename Bits<8>::type{}); break;
    default: throw DTypeError(detail::cat(op, ": unsupported element size ", size));
  }
}

// y += v, atomically, for every numeric device type.
template <class T> __device__ inline void atomic_add(T* y, T v) {
  if constexpr (std::is_same_v<T, int64_t>) {
    atomicAdd(reinterpret_cast<unsigned long long*>(y), static_cast<unsigned long long>(v));
  } else if constexpr (std::is_same_v<T, uint8_t>) {
    // No byte atomics: compare-and-swap the aligned 32-bit word holding the byte.
    const uintptr_t addr = reinterpret_cast<uintptr_t>(y);
    unsigned int* word = reinterpret_cast<unsigned int*>(addr & ~uintptr_t(3));
    const unsigned int shift = unsigned(addr & 3) * 8;
    unsigned int old = *word, assumed;
    do {
      assumed = old;
      const unsigned int byte = ((assumed >> shift) + v) & 0xffu;
      old = atomicCAS(word, assumed, (assumed & ~(0xffu << shift)) | (byte << shift));
    } while (old != assumed);
  } else {
    atomicAdd(y, v);
  }
}

// out[o, j, i] = a[o, index[j], i] (0 for a bad index)
template <class B, class I>
__global__ void index_select_kernel(B* out, const B* a, const I* idx, int64_t total, int64_t k,
                                    int64_t inner, int64_t n) {
  ANVIL_GRID_STRIDE(p, total) {
    const int64_t i = p % inner, r = p / inner, j = r % k, o = r / k;
    const int64_t v = int64_t(idx[j]);
    out[p] = in_range(v, n) ? a[(o * n + v) * inner + i] : B(0);
  }
}

// out[o, index[j], i] += src[o, j, i]; nothing when the check found a bad index.
template <class T, class I>
__global__ void index_add_kernel(T* out, const T* src, const I* idx, int64_t total, int64_t k,
                                 int64_t inner, int64_t n, const unsigned long long* bad) {
  if (found_bad(bad)) return;
  ANVIL_GRID_STRIDE(p, total) {
    const int64_t i = p % inner, r = p / inner, j = r % k, o = r / k;
    const int64_t v = int64_t(idx[j]);
    if (in_range(v, n)) atomic_add(out + (o * n + v) * inner + i, src[p]);
  }
}

// out[p] = a[offset of p's coordinates in a, with coordinate dim = index[p]] (0 for a bad
// index). `ga` has the index's sizes and a's strides, with the stride of dim zeroed; `step`
// is a's stride of dim, `size` a's size along it.
template <class B, class I>
__global__ void gather_kernel(B* out, const B* a, const I* idx, Geometry ga, int64_t step,
                              int64_t size, int64_t total) {
  ANVIL_GRID_STRIDE(p, total) {
    const int64_t v = int64_t(idx[p]);
    out[p] = in_range(v, size) ? a[offset_of(ga, p) + v * step] : B(0);
  }
}

// Nothing when the check found a bad index.
template <class T, class I>
__global__ void scatter_add_kernel(T* out, const T* src, const I* idx, Geometry gy, int64_t step,
                                   int64_t size, Geometry gx, int64_t total,
                                   const unsigned long long* bad) {
  if (found_bad(bad)) return;
  ANVIL_GRID_STRIDE(p, total) {
    const int64_t v = int64_t(idx[p]);
    if (in_range(v, size)) atomic_add(out + offset_of(gy, p) + v * step, src[offset_of(gx, p)]);
  }
}

// Geometry over `index`'s shape with `t`'s strides, the stride of `dim` zeroed when `zero_dim`.
Geometry index_geometry(const Tensor& index, const Tensor& t, int64_t dim, bool zero_dim) {
  Geometry g = geometry_of(index);
  for (int d = 0; d < g.ndim; ++d) g.strides[d] = (zero_dim && d == dim) ? 0 : t.strides()[d];
  return g;
}

void index_select_cuda(const char* op, const Tensor& out, const Tensor& a, int64_t dim,
                       const Tensor& index) {
  DeviceGuard guard(out.device().index);
  const int64_t n = a.shape()[size_t(dim)];
  check_indices(op, index, dim, n);
  const int64_t total = out.numel();
  if (total == 0) return;
  Around g = around(out.shape(), dim);
  dispatch_bits(a.element_size(), op, [&](auto zero) {
    using B = decltype(zero);
    ANVIL_DISPATCH_INDEX(index.dtype(), op, [&] {
      index_select_kernel<B, scalar_t><<<blocks_for(total), kThreads, 0, current_stream()>>>(
          static_cast<B*>(out.data_ptr()), static_cast<const B*>(a.data_ptr()),
          static_cast<const scalar_t*>(index.data_ptr()), total, g.k, g.inner, n);
    });
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

// Floating-point atomics add in whatever order threads arrive: refuse them in deterministic
// mode (anvil/core/determinism.h), as PyTorch does. Integer sums are exact in any order.
void refuse_if_deterministic(const char* op, const Tensor& out) {
  ANVIL_CHECK(!(are_deterministic_algorithms_enabled() && is_floating(out.dtype())), DeviceError,
              op, ": the CUDA kernel for ", dtype_name(out.dtype()),
              " accumulates with atomics in an unspecified order, so it has no deterministic "
              "implementation; turn use_deterministic_algorithms off or run it on the CPU");
}

void index_add_cuda(const char* op, const Tensor& out, int64_t dim, const Tensor& index,
                    const Tensor& src) {
  DeviceGuard guard(out.device().index);
  const int64_t n = out.shape()[size_t(dim)];
  const RangeCheck check = check_indices(op, index, dim, n);
  const int64_t total = src.numel();
  if (total == 0) return;
  Around g = around(src.shape(), dim);
  if (are_deterministic_algorithms_enabled() && is_floating(out.dtype())) {
    index_add_sorted(out, src, index, g.outer, g.k, g.inner, n, check.first);
    return;
  }
  ANVIL_DISPATCH_NUMERIC(out.dtype(), op, [&] {
    using T = dev_t<scalar_t>;
    T* y = static_cast<T*>(out.data_ptr());
    const T* x = static_cast<const T*>(src.data_ptr());
    ANVIL_DISPATCH_INDEX(index.dtype(), op, [&] {
      index_add_kernel<T, scalar_t><<<blocks_for(total), kThreads, 0, current_stream()>>>(
          y, x, static_cast<const scalar_t*>(index.data_ptr()), total, g.k, g.inner, n,
          check.first);
    });
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

void gather_cuda(const char* op, const Tensor& out, const Tensor& a, int64_t dim,
                 const Tensor& index) {
  DeviceGuard guard(out.device().index);
  const int64_t size = a.shape()[size_t(dim)];
  check_indices(op, index, dim, size);
  const int64_t total = index.numel();
  if (total == 0) return;
  const Geometry ga = index_geometry(index, a, dim, true);
  const int64_t step = a.strides()[size_t(dim)];
  dispatch_bits(a.element_size(), op, [&](auto zero) {
    using B = decltype(zero);
    ANVIL_DISPATCH_INDEX(index.dtype(), op, [&] {
      gather_kernel<B, scalar_t><<<blocks_for(total), kThreads, 0, current_stream()>>>(
          static_cast<B*>(out.data_ptr()), static_cast<const B*>(a.data_ptr()),
          static_cast<const scalar_t*>(index.data_ptr()), ga, step, size, total);
    });
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

void scatter_add_cuda(const char* op, const Tensor& out, int64_t dim, const Tensor& index,
                      const Tensor& src) {
  refuse_if_deterministic(op, out);
  DeviceGuard guard(out.device().index);
  const int64_t size = out.shape()[size_t(dim)];
  const RangeCheck check = check_indices(op, index, dim, size);
  const int64_t total = index.numel();
  if (total == 0) return;
  const Geometry gy = index_geometry(index, out, dim, true);
  const Geometry gx = index_geometry(index, src, dim, false);
  const int64_t step = out.strides()[size_t(dim)];
  ANVIL_DISPATCH_NUMERIC(out.dtype(), op, [&] {
    using T = dev_t<scalar_t>;
    T* y = static_cast<T*>(out.data_ptr());
    const T* x = static_cast<const T*>(src.data_ptr());
    ANVIL_DISPATCH_INDEX(index.dtype(), op, [&] {
      scatter_add_kernel<T, scalar_t><<<blocks_for(total), kThreads, 0, current_stream()>>>(
          y, x, static_cast<const scalar_t*>(index.data_ptr()), gy, step, size, gx, total,
          check.first);
    });
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

ANVIL_REGISTER_KERNEL(backend::index_select_kernels, CUDA, &index_select_cuda);
ANVIL_REGISTER_KERNEL(backend::index_add_kernels, CUDA, &index_add_cuda);
ANVIL_REGISTER_KERNEL(backend::gather_kernels, CUDA, &gather_cuda);
ANVIL_REGISTER_KERNEL(backend::scatter_add_kernels, CUDA, &scatter_add_cuda);

}  // namespace
}  // namespace anvil::cuda
