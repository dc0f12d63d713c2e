// CPU halves of GradScaler: unscaling gradients while looking for inf/NaN, and the scale's
// update. The reference for the CUDA kernels; the formulas are in backend/optim_kernels.h.
#include <cmath>

#include "backend/cpu/loops.h"
#include "backend/optim_kernels.h"

namespace anvil::cpu {
namespace {
namespace om = backend::optim_math;

template <class T>
bool unscale_one(const Tensor& grad, float inv_scale) {
  using C = compute_t<T>;
  T* g = static_cast<T*>(grad.data_ptr());
  bool found = false;
  // OpenMP's reduction(||) would do; a flag per range written once keeps it portable.
  parallel_for(grad.numel(), 4, [&](int64_t begin, int64_t end) {
    bool local = false;
    for (int64_t i = begin; i < end; ++i) {
      const C v = C(g[i]);
      local |= !std::isfinite(v);
      g[i] = T(inv_scale == 1.0f ? v : v * C(inv_scale));
    }
    if (local) {
#pragma omp atomic write
      found = true;
    }
  });
  return found;
}

void unscale_grads_cpu(const std::vector<Tensor>& grads, const Tensor& found_inf,
                       const Tensor& scale) {
  const float inv_scale = om::inverse_scale(*static_cast<const float*>(scale.data_ptr()));
  float* flag = static_cast<float*>(found_inf.data_ptr());
  for (const Tensor& g : grads) {
    bool found = false;
    ANVIL_DISPATCH_FLOAT(g.dtype(), "GradScaler.unscale_",
                         [&] { found = unscale_one<scalar_t>(g, inv_scale); });
    if (found) *flag = 1.0f;
  }
}

void update_scale_cpu(const Tensor& scale, const Tensor& growth_tracker, const Tensor& found_inf,
                      double growth_factor, double backoff_factor, int64_t growth_interval) {
  om::update_scale(static_cast<float*>(scale.data_ptr()),
                   static_cast<int32_t*>(growth_tracker.data_ptr()),
                   *static_cast<const float*>(found_inf.data_ptr()), growth_factor, backoff_factor,
                   growth_interval);
}

ANVIL_REGISTER_KERNEL(backend::unscale_grads_kernels, CPU, &unscale_grads_cpu);
ANVIL_REGISTER_KERNEL(backend::update_scale_kernels, CPU, &update_scale_cpu);

}  // namespace
}  // namespace anvil::cpu
