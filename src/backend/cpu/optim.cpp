// CPU fused optimizer updates: one OpenMP loop per parameter with the shared formulas of
// backend/optim_kernels.h. This is the reference the CUDA multi-tensor kernels are tested
// against, and bit-identical to the optimizers' former composition of anvil ops.
#include "backend/cpu/loops.h"
#include "backend/optim_kernels.h"

namespace anvil::cpu {
namespace {
using backend::OptimHyper;
using backend::OptimKind;
using backend::OptimTensors;
namespace om = backend::optim_math;

template <class C>
C* slot_data(const OptimTensors& ts, int slot, size_t i) {
  const auto& list = ts.slots[size_t(slot)];
  return list.empty() ? nullptr : static_cast<C*>(list[i].data_ptr());
}

// Elements [begin, end) of one parameter. Which slots exist is a template argument, so the
// loop has no conditional loads and stores and the compiler vectorises it (the formulas'
// option flags become selects).
template <OptimKind K, class T, bool kS0, bool kS1, bool kS2, class C = compute_t<T>>
void update_range(const om::Consts<C> k, const om::Scalars<C> t, const bool fresh, T* __restrict p,
                  const T* __restrict g, C* __restrict s0, C* __restrict s1, C* __restrict s2,
                  int64_t begin, int64_t end) {
  for (int64_t j = begin; j < end; ++j) {
    C pv = C(p[j]);
    C a = kS0 ? s0[j] : C(0), b = kS1 ? s1[j] : C(0), c = kS2 ? s2[j] : C(0);
    om::update<K>(k, t, fresh, pv, C(g[j]), a, b, c);
    p[j] = T(pv);
    if constexpr (kS0) s0[j] = a;
    if constexpr (kS1) s1[j] = b;
    if constexpr (kS2) s2[j] = c;
  }
}

template <OptimKind K, class T>
void step_params(const OptimHyper& h, const OptimTensors& ts) {
  using C = compute_t<T>;  // state is stored in C too (float32 for 16-bit parameters)
  const om::Consts<C> k = om::make_consts<C>(h);
  const double lr = *static_cast<const double*>(ts.lr.data_ptr());
  // The slots in use are the same for every parameter of the call.
  using Range =
      void (*)(om::Consts<C>, om::Scalars<C>, bool, T*, const T*, C*, C*, C*, int64_t, int64_t);
  static constexpr Range kRanges[8] = {
      update_range<K, T, false, false, false>, update_range<K, T, true, false, false>,
      update_range<K, T, false, true, false>,  update_range<K, T, true, true, false>,
      update_range<K, T, false, false, true>,  update_range<K, T, true, false, true>,
      update_range<K, T, false, true, true>,   update_range<K, T, true, true, true>};
  const Range range = kRanges[(ts.slots[0].empty() ? 0 : 1) | (ts.slots[1].empty() ? 0 : 2) |
                              (ts.slots[2].empty() ? 0 : 4)];
  for (size_t i = 0; i < ts.params.size(); ++i) {
    float* step = ts.steps.empty() ? nullptr : static_cast<float*>(ts.steps[i].data_ptr());
    float* mu =
        ts.mu_products.empty() ? nullptr : static_cast<float*>(ts.mu_products[i].data_ptr());
    if (step) om::advance_counters(h, step, mu);
    const om::Scalars<C> t =
        om::make_scalars<C>(h, lr, step ? double(*step) : 0.0, mu ? double(*mu) : 1.0);
    const bool fresh = !ts.fresh.empty() && ts.fresh[i];
    T* p = static_cast<T*>(ts.params[i].data_ptr());
    const T* g = static_cast<const T*>(ts.grads[i].data_ptr());
    C* s0 = slot_data<C>(ts, 0, i);
    C* s1 = slot_data<C>(ts, 1, i);
    C* s2 = slot_data<C>(ts, 2, i);
    parallel_for(ts.params[i].numel(), 16, [&](int64_t begin, int64_t end) {
      range(k, t, fresh, p, g, s0, s1, s2, begin, end);
    });
  }
}

template <class T>
void step_dtype(const OptimHyper& h, const OptimTensors& ts) {
  switch (h.kind) {
    case OptimKind::SGD:
      step_params<OptimKind::SGD, T>(h, ts);
      break;
    case OptimKind::Adam:
      step_params<OptimKind::Adam, T>(h, ts);
      break;
    case OptimKind::RMSprop:
      step_params<OptimKind::RMSprop, T>(h, ts);
      break;
    case OptimKind::Adagrad:
      step_params<OptimKind::Adagrad, T>(h, ts);
      break;
    case OptimKind::Adadelta:
      step_params<OptimKind::Adadelta, T>(h, ts);
      break;
    case OptimKind::NAdam:
      step_params<OptimKind::NAdam, T>(h, ts);
      break;
  }
}

void optim_step_cpu(const OptimHyper& h, const OptimTensors& ts) {
  if (ts.params.empty()) return;
  // A step GradScaler skips: nothing changes, the step counters included.
  if (ts.found_inf.defined() && *static_cast<const float*>(ts.found_inf.data_ptr()) != 0) return;
  ANVIL_DISPATCH_FLOAT(ts.params[0].dtype(), "optimizer step",
                       [&] { step_dtype<scalar_t>(h, ts); });
}

ANVIL_REGISTER_KERNEL(backend::optim_step_kernels, CPU, &optim_step_cpu);

}  // namespace
}  // namespace anvil::cpu
