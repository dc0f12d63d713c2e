// CUDA copy (any strides, dtype conversion, host<->device) and fill, all on current_stream().
// Copies between tensors of one device and host -> device copies do not wait for the device;
// device -> host copies do (the host reads the result), and so raise the errors kernels have
// recorded (error_flag.h).
#include <climits>
#include <cstring>

#include "backend/copy_kernels.h"
#include "backend/cuda/capture.h"
#include "backend/cuda/int_divider.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/pinned_allocator.h"

namespace anvil::cuda {
namespace {

template <class D, class S>
__device__ inline D convert(S v) {
  if constexpr (std::is_same_v<D, S>) return v;
  else if constexpr (std::is_integral_v<D> && std::is_integral_v<S>) return D(v);
  else return from_double<D>(to_double<S>(v));
}

// Destination and source offsets of a 32-bit row-major index over the merged dims of a copy:
// divisions by multiply-shift instead of 64-bit div/mod (which made a strided copy, such as a
// weight's conversion to channels-last, run ~30x slower than its memory traffic).
struct Index32 {
  int ndim = 0;
  IntDivider sizes[kMaxDims];
  uint32_t strides[kMaxDims][2] = {};
};

// Whether every index and offset of the packed copy fits in 31 bits.
bool fits_index32(const Pack<2>& p, int64_t n) {
  if (n > INT32_MAX) return false;
  for (int k = 0; k < 2; ++k) {
    int64_t last = 0;
    for (int d = 0; d < p.ndim; ++d) last += (p.sizes[d] - 1) * p.strides[d][k];
    if (last > INT32_MAX) return false;
  }
  return true;
}

Index32 index32_of(const Pack<2>& p) {
  Index32 ix;
  ix.ndim = p.ndim;
  for (int d = 0; d < p.ndim; ++d) {
    ix.sizes[d] = IntDivider(uint32_t(p.sizes[d]));
    for (int k = 0; k < 2; ++k) ix.strides[d][k] = uint32_t(p.strides[d][k]);
  }
  return ix;
}

// Vector: both dense and aligned for vec_width<D, S>() elements (vec.cuh); the grid strides
// over vectors then. StridedVector32: strided, but the innermost merged dim is dense in both
// and every other stride, the inner size and both pointers are whole vectors (a [B, H, T, 64]
// attention tensor moved to [B, T, H, 64]); `ix` then counts in vectors.
enum class CopyMode { Vector, Dense, Strided32, StridedVector32, Strided64 };

// ix's offsets in vectors of V elements, if the copy can go by whole vectors (see CopyMode).
template <class D, class S>
bool vectorize_index32(Index32& ix, const Pack<2>& p, const void* dst, const void* src) {
  constexpr int V = vec_width<D, S>();
  const int last = p.ndim - 1;
  if (V == 1 || last < 0 || !aligned_for<D, V>(dst) || !aligned_for<S, V>(src)) return false;
  if (p.strides[last][0] != 1 || p.strides[last][1] != 1 || p.sizes[last] % V != 0) return false;
  for (int d = 0; d < last; ++d)
    for (int k = 0; k < 2; ++k)
      if (p.strides[d][k] % V != 0) return false;
  ix.sizes[last] = IntDivider(uint32_t(p.sizes[last] / V));
  for (int d = 0; d < last; ++d)
    for (int k = 0; k < 2; ++k) ix.strides[d][k] = uint32_t(p.strides[d][k] / V);
  return true;
}

template <class D, class S>
__global__ void copy_kernel(D* dst, const S* src, int64_t n, CopyMode mode, Index32 ix,
                            Pack<2> p) {
  if (mode == CopyMode::Vector) {
    constexpr int V = vec_width<D, S>();
    ANVIL_GRID_STRIDE(c, (n + V - 1) / V) {
      const int64_t i = c * V;
      if (i + V <= n) {
        const Vec<S, V> s = load_vec<V>(src + i);
        Vec<D, V> d;
#pragma unroll
        for (int k = 0; k < V; ++k) d.v[k] = convert<D>(s.v[k]);
        store_vec<V>(dst + i, d);
      } else {  // the last, partial vector
#pragma unroll 1
        for (int64_t j = i; j < n; ++j) dst[j] = convert<D>(src[j]);
      }
    }
  } else if (mode == CopyMode::Dense) {
    ANVIL_GRID_STRIDE(i, n) dst[i] = convert<D>(src[i]);
  } else if (mode == CopyMode::Strided32 || mode == CopyMode::StridedVector32) {
    constexpr int V = vec_width<D, S>();
    const bool vec = mode == CopyMode::StridedVector32;
    ANVIL_GRID_STRIDE(i, vec ? n / V : n) {
      uint32_t linear = uint32_t(i), od = 0, os = 0;
      for (int d = ix.ndim - 1; d >= 0; --d) {
        const uint32_t q = ix.sizes[d].div(linear), c = linear - q * ix.sizes[d].divisor();
        od += c * ix.strides[d][0];
        os += c * ix.strides[d][1];
        linear = q;
      }
      if (vec) {
        const Vec<S, V> sv = load_vec<V>(src + int64_t(os) * V);
        Vec<D, V> dv;
#pragma unroll
        for (int k = 0; k < V; ++k) dv.v[k] = convert<D>(sv.v[k]);
        store_vec<V>(dst + int64_t(od) * V, dv);
      } else {
        dst[od] = convert<D>(src[os]);
      }
    }
  } else {
    ANVIL_GRID_STRIDE(i, n) {
      int64_t off[2];
      offsets_of(p, i, off);
      dst[off[0]] = convert<D>(src[off[1]]);
    }
  }
}

template <class T>
__global__ void fill_kernel(T* dst, Geometry g, T v, int64_t n, bool dense) {
  if (dense) {
    ANVIL_GRID_STRIDE(i, n) dst[i] = v;
  } else {
    ANVIL_GRID_STRIDE(i, n) dst[offset_of(g, i)] = v;
  }
}

void copy_on_device(const Tensor& dst, const Tensor& src) {
  DeviceGuard guard(dst.device().index);
  const int64_t n = dst.numel();
  const Pack<2> p = make_pack<2>({&dst, &src});
  CopyMode mode = p.contiguous          ? CopyMode::Dense
                  : fits_index32(p, n) ? CopyMode::Strided32
                                       : CopyMode::Strided64;
  const Index32 ix = mode == CopyMode::Strided32 ? index32_of(p) : Index32{};
  ANVIL_DISPATCH_ALL(dst.dtype(), "copy_", [&] {
    using D = dev_t<scalar_t>;
    ANVIL_DISPATCH_ALL(src.dtype(), "copy_", [&] {
      using S = dev_t<scalar_t>;
      constexpr int V = vec_width<D, S>();
      CopyMode m = mode;
      Index32 vix = ix;
      if (m == CopyMode::Dense && !scalar_elementwise() &&
          aligned_for<D, V>(dst.data_ptr()) && aligned_for<S, V>(src.data_ptr()))
        m = CopyMode::Vector;
      if (m == CopyMode::Strided32 && !scalar_elementwise() &&
          vectorize_index32<D, S>(vix, p, dst.data_ptr(), src.data_ptr()))
        m = CopyMode::StridedVector32;
      const int64_t items = m == CopyMode::Vector ? (n + V - 1) / V
                            : m == CopyMode::StridedVector32 ? n / V
                                                             : n;
      copy_kernel<D, S><<<blocks_for(items), kThreads, 0, current_stream()>>>(
          static_cast<D*>(dst.data_ptr()), static_cast<const S*>(src.data_ptr()), n, m, vix, p);
    });
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

// A dense copy between two GPUs: each device's stream is ordered only with itself, so wait
// for the source's pending writes, copy, and wait for the copy (the source may be freed and
// reused on its own stream once this returns). Both waits raise recorded kernel errors. Not
// part of a single-device training step.
void copy_between_devices(const Tensor& dst, const Tensor& src, size_t nbytes) {
  const int from = src.device().index, to = dst.device().index;
  synchronize(from);
  DeviceGuard guard(to);
  ANVIL_CUDA_CHECK(
      cudaMemcpyPeerAsync(dst.data_ptr(), to, src.data_ptr(), from, nbytes, current_stream()));
  synchronize(to);
}

// Host -> device of a dense buffer of dst's dtype. From pageable memory (anvil's CPU tensors)
// the driver stages the bytes into its own pinned buffer before cudaMemcpyAsync returns, so
// `host` may go at once (the driver may wait for the stream to do so, and such a copy cannot
// be captured into a graph). From page-locked memory the copy is truly asynchronous: the
// bytes are read when the stream reaches the copy, so they must stay alive and unchanged until
// then. The caller's own tensor is the caller's to keep (as with PyTorch's non_blocking
// copies); a page-locked temporary made here is waited for.
void copy_from_host(const Tensor& dst, const Tensor& host, bool temporary, size_t nbytes) {
  DeviceGuard guard(dst.device().index);
  // A captured copy would read `host` at every replay, long after it is gone.
  refuse_in_capture("a copy from host memory");
  ANVIL_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), host.data_ptr(), nbytes,
                                   cudaMemcpyHostToDevice, current_stream()));
  // anvil's page-locked blocks (Tensor::pin_memory) are reused only after this copy is done.
  if (is_pinned(host.data_ptr())) pinned_record_use(host.data_ptr(), current_stream());
  if (!temporary) return;
  cudaPointerAttributes attr{};
  ANVIL_CUDA_CHECK(cudaPointerGetAttributes(&attr, host.data_ptr()));
  if (attr.type == cudaMemoryTypeHost) ANVIL_CUDA_CHECK(cudaStreamSynchronize(current_stream()));
}

void copy_cuda(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  const bool same = dst.dtype() == src.dtype();
  const size_t nbytes = size_t(dst.numel()) * dst.element_size();
  if (dst.device().is_cuda() && src.device().is_cuda()) {
    const bool dense = same && dst.is_contiguous() && src.is_contiguous();
    if (dense && dst.device() == src.device()) {
      DeviceGuard guard(dst.device().index);
      ANVIL_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), nbytes,
                                       cudaMemcpyDeviceToDevice, current_stream()));
      return;
    }
    if (dense) {
      copy_between_devices(dst, src, nbytes);
      return;
    }
    ANVIL_CHECK(dst.device() == src.device(), DeviceError,
                "copy_: strided or converting copies between different GPUs (", src.device().str(),
                " to ", dst.device().str(), ") are not supported; copy contiguous tensors");
    copy_on_device(dst, src);
    return;
  }
  if (src.device().is_cpu()) {  // host -> device: densify and convert on the host, then one memcpy
    Tensor host = src.to(dst.dtype()).contiguous();
    const bool temporary = host.data_ptr() != src.data_ptr();
    if (dst.is_contiguous()) {
      copy_from_host(dst, host, temporary, nbytes);
    } else {
      Tensor staged = Tensor::empty(dst.shape(), dst.options());
      copy_from_host(staged, host, temporary, nbytes);
      copy_on_device(dst, staged);
    }
    return;
  }
  // device -> host: densify and convert on the device, then one memcpy, then wait for it (and
  // for everything before it) and raise what the kernels recorded. Refused inside a graph
  // capture before anything is enqueued (a failed memcpy would not end the capture).
  refuse_in_capture("a copy to host memory (item(), .to(kCPU))");
  Tensor dense = src;
  if (!same || !src.is_contiguous()) {
    dense = Tensor::empty(src.shape(), TensorOptions(dst.dtype()).device(src.device()));
    copy_on_device(dense, src);
  }
  const int device = src.device().index;
  DeviceGuard guard(device);
  Tensor host = dst.is_contiguous() ? dst : Tensor::empty(dst.shape(), dst.dtype());
  ANVIL_CUDA_CHECK(cudaMemcpyAsync(host.data_ptr(), dense.data_ptr(), nbytes,
                                   cudaMemcpyDeviceToHost, current_stream()));
  synchronize(device);
  if (!host.is_same(dst)) dst.copy_(host);
}

void fill_cuda(const Tensor& dst, const Scalar& value) {
  if (dst.numel() == 0) return;
  DeviceGuard guard(dst.device().index);
  Geometry g = geometry_of(dst);
  int64_t n = dst.numel();
  ANVIL_DISPATCH_ALL(dst.dtype(), "fill_", [&] {
    using D = dev_t<scalar_t>;
    scalar_t host_v = value.to<std::conditional_t<std::is_integral_v<scalar_t>, scalar_t, double>>();
    D v;
    std::memcpy(static_cast<void*>(&v), &host_v, sizeof(D));  // same bits on both sides
    fill_kernel<D><<<blocks_for(n), kThreads, 0, current_stream()>>>(
        static_cast<D*>(dst.data_ptr()), g, v, n, dst.is_contiguous());
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

ANVIL_REGISTER_KERNEL(backend::copy_kernels, CUDA, &copy_cuda);
ANVIL_REGISTER_KERNEL(backend::fill_kernels, CUDA, &fill_cuda);

}  // namespace
}  // namespace anvil::cuda
