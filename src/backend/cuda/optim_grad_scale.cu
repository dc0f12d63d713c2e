// CUDA halves of GradScaler: a multi-tensor kernel that unscales gradients and raises the
// found_inf flag, and a one-thread kernel that updates the scale. Both read the scale and the
// flags on the device, so a step with them replays from a CUDA graph. Formulas:
// backend/optim_kernels.h; reference: backend/cpu/optim_grad_scale.cpp.
#include "backend/cuda/launch.cuh"
#include "backend/cuda/optim_tensor_lists.cuh"
#include "backend/cuda/stream.h"
#include "backend/optim_kernels.h"

namespace anvil::cuda {
namespace {
namespace om = backend::optim_math;
namespace tl = tensor_lists;

constexpr int kMaxTensors = 110;

struct UnscaleArgs {
  void* ptr[kMaxTensors];
  int64_t numel[kMaxTensors];
  tl::BlockTable blocks;
};
static_assert(tl::fits_kernel_params<UnscaleArgs, float*, const float*>());

template <class T>
__global__ void __launch_bounds__(tl::kBlockThreads)
    unscale_kernel(UnscaleArgs a, float* found_inf, const float* scale) {
  using C = compute_t<T>;
  const C inv_scale = C(om::inverse_scale(*scale));
  int s;
  int64_t begin, end;
  tl::chunk_range(a.blocks, a.numel, s, begin, end);
  T* g = static_cast<T*>(a.ptr[s]);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const C v = up(g[i]);
    if (!isfinite(v)) *found_inf = 1.0f;  // every writer writes the same value
    g[i] = down<T>(inv_scale == C(1) ? v : v * inv_scale);
  }
}

void unscale_grads_cuda(const std::vector<Tensor>& grads, const Tensor& found_inf,
                        const Tensor& scale) {
  if (grads.empty()) return;
  DeviceGuard guard(found_inf.device().index);
  std::vector<int64_t> numels;
  for (const Tensor& g : grads) numels.push_back(g.numel());
  float* flag = static_cast<float*>(found_inf.data_ptr());
  const float* sc = static_cast<const float*>(scale.data_ptr());
  ANVIL_DISPATCH_FLOAT(grads[0].dtype(), "GradScaler.unscale_", [&] {
    using T = dev_t<scalar_t>;
    auto set = [&](UnscaleArgs& a, int s, size_t i) { a.ptr[s] = grads[i].data_ptr(); };
    auto launch = [&](const UnscaleArgs& a, int blocks) {
      unscale_kernel<T><<<blocks, tl::kBlockThreads, 0, current_stream()>>>(a, flag, sc);
      ANVIL_CUDA_CHECK(cudaGetLastError());
    };
    UnscaleArgs args{};
    tl::for_each_launch<kMaxTensors>(numels, args, set, launch);
  });
}

__global__ void update_scale_kernel(float* scale, int32_t* growth_tracker, const float* found_inf,
                                    double growth_factor, double backoff_factor,
                                    int64_t growth_interval) {
  om::update_scale(scale, growth_tracker, *found_inf, growth_factor, backoff_factor,
                   growth_interval);
}

void update_scale_cuda(const Tensor& scale, const Tensor& growth_tracker, const Tensor& found_inf,
                       double growth_factor, double backoff_factor, int64_t growth_interval) {
  DeviceGuard guard(scale.device().index);
  update_scale_kernel<<<1, 1, 0, current_stream()>>>(
      static_cast<float*>(scale.data_ptr()), static_cast<int32_t*>(growth_tracker.data_ptr()),
      static_cast<const float*>(found_inf.data_ptr()), growth_factor, backoff_factor,
      growth_interval);
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

ANVIL_REGISTER_KERNEL(backend::unscale_grads_kernels, CUDA, &unscale_grads_cuda);
ANVIL_REGISTER_KERNEL(backend::update_scale_kernels, CUDA, &update_scale_cuda);

}  // namespace
}  // namespace anvil::cuda
