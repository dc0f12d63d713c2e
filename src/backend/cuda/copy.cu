// CUDA copy (any strides, dtype conversion, host<->device) and fill.
#include <cstring>

#include "backend/copy_kernels.h"
#include "backend/cuda/launch.cuh"

namespace anvil::cuda {
namespace {

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

void copy_on_device(const Tensor& dst, const Tensor& src) {
  DeviceGuard guard(dst.device().index);
  Geometry gd = geometry_of(dst), gs = geometry_of(src);
  int64_t n = dst.numel();
  ANVIL_DISPATCH_ALL(dst.dtype(), "copy_", [&] {
    using D = dev_t<scalar_t>;
    ANVIL_DISPATCH_ALL(src.dtype(), "copy_", [&] {
      using S = dev_t<scalar_t>;
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
    using D = dev_t<scalar_t>;
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
