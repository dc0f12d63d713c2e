// CUDA copy (any strides, dtype conversion, host<->device) and fill.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstring>

#include "backend/copy_kernels.h"
#include "backend/cuda/runtime.h"

namespace anvil::cuda {
namespace {

constexpr int kMaxDims = 8;

// Geometry of a strided operand, passed by value to kernels.
struct Geometry {
  int ndim;
  int64_t sizes[kMaxDims];
  int64_t strides[kMaxDims];  // elements
};

Geometry geometry_of(const Tensor& t) {
  ANVIL_CHECK(t.dim() <= kMaxDims, ShapeError, "copy_: CUDA copies support up to ", kMaxDims,
              " dims, got shape ", to_string(t.shape()));
  Geometry g{};
  g.ndim = int(t.dim());
  for (int i = 0; i < g.ndim; ++i) {
    g.sizes[i] = t.shape()[i];
    g.strides[i] = t.strides()[i];
  }
  return g;
}

__device__ inline int64_t offset_of(const Geometry& g, int64_t linear) {
  int64_t off = 0;
  for (int d = g.ndim - 1; d >= 0; --d) {
    off += (linear % g.sizes[d]) * g.strides[d];
    linear /= g.sizes[d];
  }
  return off;
}

// Device-side float conversions for the storage types (bit-compatible with anvil's).
template <class T> struct DevType { using type = T; };
template <> struct DevType<float16> { using type = __half; };
template <> struct DevType<bfloat16> { using type = __nv_bfloat16; };

template <class T> __device__ inline double to_double(T v) { return double(v); }
template <> __device__ inline double to_double(__half v) { return double(__half2float(v)); }
template <> __device__ inline double to_double(__nv_bfloat16 v) { return double(__bfloat162float(v)); }
template <class T> __device__ inline T from_double(double v) { return T(v); }
template <> __device__ inline bool from_double(double v) { return v != 0; }
template <> __device__ inline __half from_double(double v) { return __float2half(float(v)); }
template <> __device__ inline __nv_bfloat16 from_double(double v) { return __float2bfloat16(float(v)); }

template <class D, class S>
__global__ void copy_kernel(D* dst, Geometry gd, const S* src, Geometry gs, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    S v = src[offset_of(gs, i)];
    if constexpr (std::is_same_v<D, S>) dst[offset_of(gd, i)] = v;
    else if constexpr (std::is_integral_v<D> && std::is_integral_v<S>) dst[offset_of(gd, i)] = D(v);
    else dst[offset_of(gd, i)] = from_double<D>(to_double<S>(v));
  }
}

template <class T>
__global__ void fill_kernel(T* dst, Geometry g, T v, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[offset_of(g, i)] = v;
}

int blocks_for(int64_t n) { return int(std::min<int64_t>((n + 255) / 256, 65535)); }

void copy_on_device(const Tensor& dst, const Tensor& src) {
  DeviceGuard guard(dst.device().index);
  Geometry gd = geometry_of(dst), gs = geometry_of(src);
  int64_t n = dst.numel();
  ANVIL_DISPATCH_ALL(dst.dtype(), "copy_", [&] {
    using D = typename DevType<scalar_t>::type;
    ANVIL_DISPATCH_ALL(src.dtype(), "copy_", [&] {
      using S = typename DevType<scalar_t>::type;
      copy_kernel<D, S><<<blocks_for(n), 256>>>(static_cast<D*>(dst.data_ptr()), gd,
                                                 static_cast<const S*>(src.data_ptr()), gs, n);
    });
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

void copy_cuda(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  const bool same = dst.dtype() == src.dtype();
  const size_t nbytes = size_t(dst.numel()) * dst.element_size();
  if (dst.device().is_cuda() && src.device().is_cuda()) {
    if (same && dst.is_contiguous() && src.is_contiguous()) {
      ANVIL_CUDA_CHECK(cudaMemcpy(dst.data_ptr(), src.data_ptr(), nbytes, cudaMemcpyDeviceToDevice));
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
    if (dst.is_contiguous()) {
      DeviceGuard guard(dst.device().index);
      ANVIL_CUDA_CHECK(cudaMemcpy(dst.data_ptr(), host.data_ptr(), nbytes, cudaMemcpyHostToDevice));
    } else {
      Tensor staged = Tensor::empty(dst.shape(), dst.options());
      copy_cuda(staged, host);
      copy_on_device(dst, staged);
    }
    return;
  }
  // device -> host: densify and convert on the device, then one memcpy
  Tensor dense = src;
  if (!same || !src.is_contiguous()) {
    dense = Tensor::empty(src.shape(), TensorOptions(dst.dtype()).device(src.device()));
    copy_on_device(dense, src);
  }
  DeviceGuard guard(src.device().index);
  if (dst.is_contiguous()) {
    ANVIL_CUDA_CHECK(cudaMemcpy(dst.data_ptr(), dense.data_ptr(), nbytes, cudaMemcpyDeviceToHost));
  } else {
    Tensor host = Tensor::empty(dst.shape(), dst.dtype());
    ANVIL_CUDA_CHECK(cudaMemcpy(host.data_ptr(), dense.data_ptr(), nbytes, cudaMemcpyDeviceToHost));
    dst.copy_(host);
  }
}

void fill_cuda(const Tensor& dst, const Scalar& value) {
  if (dst.numel() == 0) return;
  DeviceGuard guard(dst.device().index);
  Geometry g = geometry_of(dst);
  int64_t n = dst.numel();
  ANVIL_DISPATCH_ALL(dst.dtype(), "fill_", [&] {
    using D = typename DevType<scalar_t>::type;
    scalar_t host_v = value.to<std::conditional_t<std::is_integral_v<scalar_t>, scalar_t, double>>();
    D v;
    std::memcpy(static_cast<void*>(&v), &host_v, sizeof(D));  // same bits on both sides
    fill_kernel<D><<<blocks_for(n), 256>>>(static_cast<D*>(dst.data_ptr()), g, v, n);
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

ANVIL_REGISTER_KERNEL(backend::copy_kernels, CUDA, &copy_cuda);
ANVIL_REGISTER_KERNEL(backend::fill_kernels, CUDA, &fill_cuda);

}  // namespace
}  // namespace anvil::cuda
