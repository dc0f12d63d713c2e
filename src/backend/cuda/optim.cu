// CUDA fused optimizer updates: one multi-tensor kernel per launch of up to kMaxTensors
// parameters, after one small kernel that advances their step counters (and NAdam's
// mu_product). The learning rate and the counters are read from device memory, so both
// kernels replay correctly from a CUDA graph. With a found_inf flag (GradScaler's) both return
// at once where it is set, so a skipped step leaves everything as it was. Formulas:
// backend/optim_kernels.h.
#include "backend/cuda/launch.cuh"
#include "backend/cuda/optim_tensor_lists.cuh"
#include "backend/cuda/stream.h"
#include "backend/optim_kernels.h"

namespace anvil::cuda {
namespace {
using backend::OptimHyper;
using backend::OptimKind;
using backend::OptimTensors;
namespace om = backend::optim_math;
namespace tl = tensor_lists;

// GradScaler's flag, or null when the step is unconditional.
const float* found_inf_ptr(const OptimTensors& ts) {
  return ts.found_inf.defined() ? static_cast<const float*>(ts.found_inf.data_ptr()) : nullptr;
}

// ---- counters -------------------------------------------------------------------------------
// Separate from the update kernel: every block of a parameter reads its step, so none of
// them may advance it.
constexpr int kMaxCounters = 224;

struct CounterArgs {
  float* step[kMaxCounters];
  float* mu_product[kMaxCounters];  // null but for NAdam
  int n;
};
static_assert(tl::fits_kernel_params<OptimHyper, CounterArgs, const float*>());

__global__ void advance_counters_kernel(OptimHyper h, CounterArgs a, const float* found_inf) {
  if (found_inf && *found_inf != 0.0f) return;
  const int i = int(threadIdx.x);
  if (i < a.n) om::advance_counters(h, a.step[i], a.mu_product[i]);
}

void advance_counters(const OptimHyper& h, const OptimTensors& ts, const float* found_inf) {
  CounterArgs a{};
  for (size_t i = 0; i < ts.steps.size();) {
    a.n = 0;
    for (; i < ts.steps.size() && a.n < kMaxCounters; ++i, ++a.n) {
      a.step[a.n] = static_cast<float*>(ts.steps[i].data_ptr());
      a.mu_product[a.n] =
          ts.mu_products.empty() ? nullptr : static_cast<float*>(ts.mu_products[i].data_ptr());
    }
    advance_counters_kernel<<<1, 256, 0, current_stream()>>>(h, a, found_inf);
    ANVIL_CUDA_CHECK(cudaGetLastError());
  }
}

// ---- the update -----------------------------------------------------------------------------
constexpr int kMaxTensors = 96;

struct StepArgs {
  void* param[kMaxTensors];
  const void* grad[kMaxTensors];
  void* slot[3][kMaxTensors];  // null where the options don't use the slot
  const float* step[kMaxTensors];
  const float* mu_product[kMaxTensors];
  int64_t numel[kMaxTensors];
  uint8_t fresh[kMaxTensors];
  tl::BlockTable blocks;
};
static_assert(tl::fits_kernel_params<OptimHyper, om::Consts<double>, const double*, StepArgs,
                                     const float*>());

template <OptimKind K, class T>
__global__ void __launch_bounds__(tl::kBlockThreads)
    step_kernel(OptimHyper h, om::Consts<compute_t<T>> k, const double* lr, StepArgs a,
                const float* found_inf) {
  using C = compute_t<T>;  // state is stored in C (float32 for 16-bit parameters)
  if (found_inf && *found_inf != 0.0f) return;
  int s;
  int64_t begin, end;
  tl::chunk_range(a.blocks, a.numel, s, begin, end);
  const double step = a.step[s] ? double(*a.step[s]) : 0.0;
  const double mu_product = a.mu_product[s] ? double(*a.mu_product[s]) : 1.0;
  const om::Scalars<C> t = om::make_scalars<C>(h, *lr, step, mu_product);
  const bool fresh = a.fresh[s] != 0;
  T* p = static_cast<T*>(a.param[s]);
  const T* g = static_cast<const T*>(a.grad[s]);
  C* s0 = static_cast<C*>(a.slot[0][s]);
  C* s1 = static_cast<C*>(a.slot[1][s]);
  C* s2 = static_cast<C*>(a.slot[2][s]);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    C pv = up(p[i]);
    C v0 = s0 ? s0[i] : C(0), v1 = s1 ? s1[i] : C(0), v2 = s2 ? s2[i] : C(0);
    om::update<K>(k, t, fresh, pv, up(g[i]), v0, v1, v2);
    p[i] = down<T>(pv);
    if (s0) s0[i] = v0;
    if (s1) s1[i] = v1;
    if (s2) s2[i] = v2;
  }
}

template <OptimKind K, class T>
void launch_updates(const OptimHyper& h, const OptimTensors& ts) {
  const om::Consts<compute_t<T>> k = om::make_consts<compute_t<T>>(h);
  const double* lr = static_cast<const double*>(ts.lr.data_ptr());
  const float* found_inf = found_inf_ptr(ts);
  std::vector<int64_t> numels;
  for (const Tensor& p : ts.params) numels.push_back(p.numel());
  auto set = [&ts](StepArgs& a, int s, size_t i) {
    a.param[s] = ts.params[i].data_ptr();
    a.grad[s] = ts.grads[i].data_ptr();
    for (size_t j = 0; j < 3; ++j)
      a.slot[j][s] = ts.slots[j].empty() ? nullptr : ts.slots[j][i].data_ptr();
    a.step[s] = ts.steps.empty() ? nullptr : static_cast<const float*>(ts.steps[i].data_ptr());
    a.mu_product[s] =
        ts.mu_products.empty() ? nullptr : static_cast<const float*>(ts.mu_products[i].data_ptr());
    a.fresh[s] = ts.fresh.empty() ? 0 : ts.fresh[i];
  };
  auto launch = [&](const StepArgs& a, int blocks) {
    step_kernel<K, T><<<blocks, tl::kBlockThreads, 0, current_stream()>>>(h, k, lr, a, found_inf);
    ANVIL_CUDA_CHECK(cudaGetLastError());
  };
  StepArgs args{};
  tl::for_each_launch<kMaxTensors>(numels, args, set, launch);
}

template <class T>
void launch_dtype(const OptimHyper& h, const OptimTensors& ts) {
  switch (h.kind) {
    case OptimKind::SGD:
      launch_updates<OptimKind::SGD, T>(h, ts);
      break;
    case OptimKind::Adam:
      launch_updates<OptimKind::Adam, T>(h, ts);
      break;
    case OptimKind::RMSprop:
      launch_updates<OptimKind::RMSprop, T>(h, ts);
      break;
    case OptimKind::Adagrad:
      launch_updates<OptimKind::Adagrad, T>(h, ts);
      break;
    case OptimKind::Adadelta:
      launch_updates<OptimKind::Adadelta, T>(h, ts);
      break;
    case OptimKind::NAdam:
      launch_updates<OptimKind::NAdam, T>(h, ts);
      break;
  }
}

void optim_step_cuda(const OptimHyper& h, const OptimTensors& ts) {
  if (ts.params.empty()) return;
  DeviceGuard guard(ts.params[0].device().index);
  advance_counters(h, ts, found_inf_ptr(ts));
  ANVIL_DISPATCH_FLOAT(ts.params[0].dtype(), "optimizer step",
                       [&] { launch_dtype<dev_t<scalar_t>>(h, ts); });
}

ANVIL_REGISTER_KERNEL(backend::optim_step_kernels, CUDA, &optim_step_cuda);

}  // namespace
}  // namespace anvil::cuda
