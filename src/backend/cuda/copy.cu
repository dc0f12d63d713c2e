// CUDA copy (any strides, dtype conversion, host<->device) and fill, all on current_stream().
// Copies between tensors of one device and host -> device copies do not wait for the device;
// device -> host copies do (the host reads the result), and so raise the errors kernels have
// recorded (error_flag.h).
#include <cstring>

#include "backend/copy_kernels.h"
#include "backend/cuda/capture.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/pinned_allocator.h"

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
      copy_kernel<D, S><<<blocks_for(n), kThreads, 0, current_stream()>>>(
          static_cast<D*>(dst.data_ptr()), gd, static_cast<const S*>(src.data_ptr()), gs, n);
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
        static_cast<D*>(dst.data_ptr()), g, v, n);
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

ANVIL_REGISTER_KERNEL(backend::copy_kernels, CUDA, &copy_cuda);
ANVIL_REGISTER_KERNEL(backend::fill_kernels, CUDA, &fill_cuda);

}  // namespace
}  // namespace anvil::cuda
