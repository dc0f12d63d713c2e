// Fused optimizer updates and gradient-norm clipping: their kernel tables and the per-element
// formulas the CPU and CUDA backends share (so the two cannot drift apart).
//
// One optimizer_step call updates many parameters of one device and one dtype. Every value
// that changes from step to step is read from device memory: the learning rate (a 0-dim
// float64 tensor), each parameter's step counter ("step", 0-dim float32, advanced by the call)
// and NAdam's mu_product (0-dim float32). Everything else (betas, eps, weight decay, ...) is a
// launch argument, fixed for as long as the optimizer's hyper_version() stays the same. So the
// call can be captured in a CUDA graph and replayed. An optional device flag (GradScaler's
// found_inf) makes the call skip the whole update on the device.
//
// The formulas reproduce the optimizers' former composition of anvil ops operation by
// operation: every intermediate is rounded to the compute type, scalars are rounded to it
// from double as the ops wrapped them, and step-dependent scalars (bias corrections, NAdam's
// mu) are computed in double from the step as the host used to. Products are never fused
// with sums (CUDA's contraction into FMA is blocked with explicitly rounded intrinsics), so
// the CPU result is bit-identical to the old composed update and checkpoints resume exactly.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

#if defined(__CUDACC__)
#define ANVIL_HD __host__ __device__
#else
#define ANVIL_HD
#endif

namespace anvil::backend {

enum class OptimKind : uint8_t { SGD, Adam, RMSprop, Adagrad, Adadelta, NAdam };

// The launch arguments of one group's update (PyTorch's names). Unused fields stay 0.
struct OptimHyper {
  OptimKind kind = OptimKind::SGD;
  double weight_decay = 0;
  double momentum = 0, dampening = 0;  // SGD; RMSprop's momentum
  double beta1 = 0, beta2 = 0;         // Adam, NAdam
  double eps = 0;
  double alpha = 0;           // RMSprop
  double rho = 0;             // Adadelta
  double lr_decay = 0;        // Adagrad
  double momentum_decay = 0;  // NAdam
  bool maximize = false;
  bool nesterov = false;   // SGD
  bool amsgrad = false;    // Adam
  bool decoupled = false;  // AdamW; NAdam's decoupled_weight_decay
  bool centered = false;   // RMSprop
};

// The tensors of one fused update: dense, all on one device, params (and grads) of one
// floating dtype, state buffers shaped like the params in state_dtype(params' dtype).
//   slots: SGD {momentum_buffer}; Adam {exp_avg, exp_avg_sq, max_exp_avg_sq};
//          RMSprop {square_avg, momentum_buffer, grad_avg}; Adagrad {sum};
//          Adadelta {square_avg, acc_delta}; NAdam {exp_avg, exp_avg_sq}.
//   A slot's list is empty when the options don't use it, else one tensor per parameter.
struct OptimTensors {
  std::vector<Tensor> params, grads;
  std::array<std::vector<Tensor>, 3> slots;
  std::vector<Tensor> steps;        // all kinds but SGD
  std::vector<Tensor> mu_products;  // NAdam
  std::vector<uint8_t> fresh;       // SGD: slot 0 was just created and takes the gradient
  Tensor lr;                        // 0-dim float64
  // Optional 0-dim float32: where non-zero the call changes nothing (parameters, state and
  // step counters), as PyTorch's fused optimizers do for a step GradScaler skips.
  Tensor found_inf;
};

using OptimStepFn = void(const OptimHyper& hyper, const OptimTensors& tensors);
inline constinit KernelTable<OptimStepFn> optim_step_kernels{"optimizer step"};

// clip_grad_norm_ in two device-side halves. grad_norm writes into the 0-dim `out` the
// norm_type-norm of all elements of `grads` together (any floating dtypes, dense, one
// device; accumulated in double). grad_scale multiplies every grad by
// min(max_norm / (total + 1e-6), 1), computed on the device from the 0-dim `total`.
using GradNormFn = void(const std::vector<Tensor>& grads, double norm_type, const Tensor& out);
using GradScaleFn = void(const std::vector<Tensor>& grads, const Tensor& total, double max_norm);
inline constinit KernelTable<GradNormFn> grad_norm_kernels{"clip_grad_norm_"};
inline constinit KernelTable<GradScaleFn> grad_scale_kernels{"clip_grad_norm_"};

// GradScaler's device halves (torch._amp_foreach_non_finite_check_and_unscale_ and
// torch._amp_update_scale_), graph-safe: every value is read and written on the device.
// unscale_grads: grads (dense, one device, one floating dtype) are multiplied by
// 1 / scale (0-dim float32, inverted on the device in double and rounded to float32, as
// PyTorch does), computing in float32 at least; the 0-dim float32 found_inf is set to 1 where
// any element (before unscaling) is inf or NaN, and left alone otherwise.
using UnscaleGradsFn = void(const std::vector<Tensor>& grads, const Tensor& found_inf,
                            const Tensor& scale);
// update_scale: one step of the scale's schedule (optim_math::update_scale) on the 0-dim
// float32 scale and int32 growth_tracker, given the 0-dim float32 found_inf.
using UpdateScaleFn = void(const Tensor& scale, const Tensor& growth_tracker,
                           const Tensor& found_inf, double growth_factor, double backoff_factor,
                           int64_t growth_interval);
inline constinit KernelTable<UnscaleGradsFn> unscale_grads_kernels{"GradScaler.unscale_"};
inline constinit KernelTable<UpdateScaleFn> update_scale_kernels{"GradScaler.update"};

// Optimizer state of 16-bit parameters is kept in float32; others in their own dtype.
inline DType optim_state_dtype(DType param) {
  return param == kFloat16 || param == kBFloat16 ? kFloat32 : param;
}

// ---- the formulas ---------------------------------------------------------------------------
namespace optim_math {

// Correctly rounded arithmetic that the CUDA compiler may not contract into FMA.
template <class C>
ANVIL_HD inline C add(C a, C b) {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(C) == 4)
    return __fadd_rn(a, b);
  else
    return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
template <class C>
ANVIL_HD inline C sub(C a, C b) {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(C) == 4)
    return __fsub_rn(a, b);
  else
    return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
template <class C>
ANVIL_HD inline C mul(C a, C b) {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(C) == 4)
    return __fmul_rn(a, b);
  else
    return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
template <class C>
ANVIL_HD inline C div(C a, C b) {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(C) == 4)
    return __fdiv_rn(a, b);
  else
    return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
template <class C>
ANVIL_HD inline C sqrt(C a) {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(C) == 4)
    return __fsqrt_rn(a);
  else
    return __dsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}
ANVIL_HD inline double pow(double a, double b) {
#if defined(__CUDA_ARCH__)
  return ::pow(a, b);
#else
  return std::pow(a, b);
#endif
}
// anvil's maximum: NaN in either operand propagates.
template <class C>
ANVIL_HD inline C maximum(C a, C b) {
  return (a != a || a > b) ? a : b;
}

// Launch constants in the compute type C, rounded from double as the ops' scalars were.
template <class C>
struct Consts {
  C weight_decay, momentum, one_minus_dampening;
  C lerp_weight;  // of the running average (1 - beta1, or 1 - alpha), see lerp() below
  C beta2, one_minus_beta2, eps, alpha, one_minus_alpha, rho, one_minus_rho;
  bool lerp_from_end;
  bool has_weight_decay, has_momentum, maximize, nesterov, amsgrad, decoupled, centered;
};

template <class C>
Consts<C> make_consts(const OptimHyper& h) {
  Consts<C> k{};
  k.weight_decay = C(h.weight_decay);
  k.momentum = C(h.momentum);
  k.one_minus_dampening = C(1 - h.dampening);
  // torch.lerp(a, b, w) computes a + w (b - a) for w < 0.5 and b - (1 - w) (b - a) otherwise.
  const double w = h.kind == OptimKind::RMSprop ? 1 - h.alpha : 1 - h.beta1;
  k.lerp_from_end = !(w < 0.5);
  k.lerp_weight = C(k.lerp_from_end ? 1.0 - w : w);
  k.beta2 = C(h.beta2);
  k.one_minus_beta2 = C(1 - h.beta2);
  k.eps = C(h.eps);
  k.alpha = C(h.alpha);
  k.one_minus_alpha = C(1 - h.alpha);
  k.rho = C(h.rho);
  k.one_minus_rho = C(1 - h.rho);
  k.has_weight_decay = h.weight_decay != 0;
  k.has_momentum = h.momentum != 0;
  k.maximize = h.maximize;
  k.nesterov = h.nesterov;
  k.amsgrad = h.amsgrad;
  k.decoupled = h.decoupled;
  k.centered = h.centered;
  return k;
}

// Per-parameter scalars, from the device's lr, step (already advanced) and mu_product.
template <class C>
struct Scalars {
  C neg_lr;     // -lr (SGD, RMSprop, Adadelta), -clr (Adagrad), -lr / bc1 (Adam)
  C decay;      // 1 - lr * weight_decay (decoupled decay)
  C bias;       // sqrt(1 - beta2^t) (Adam), 1 - beta2^t (NAdam)
  C grad_coef;  // NAdam: -lr (1 - mu_t) / (1 - P_t)
  C avg_coef;   // NAdam: -lr mu_{t+1} / (1 - P_t mu_{t+1})
};

// NAdam's momentum coefficient mu_t = beta1 (1 - 0.5 * 0.96^(t momentum_decay)).
ANVIL_HD inline double nadam_mu(const OptimHyper& h, double step) {
  return mul(h.beta1, sub(1.0, mul(0.5, pow(0.96, mul(step, h.momentum_decay)))));
}

template <class C>
ANVIL_HD inline Scalars<C> make_scalars(const OptimHyper& h, double lr, double step,
                                        double mu_product) {
  Scalars<C> s{};
  s.neg_lr = C(-lr);
  s.decay = C(sub(1.0, mul(lr, h.weight_decay)));
  switch (h.kind) {
    case OptimKind::Adam: {
      const double bc1 = sub(1.0, pow(h.beta1, step));
      const double bc2 = sub(1.0, pow(h.beta2, step));
      s.neg_lr = C(-div(lr, bc1));
      s.bias = C(sqrt(bc2));
      break;
    }
    case OptimKind::Adagrad:
      s.neg_lr = C(-div(lr, add(1.0, mul(sub(step, 1.0), h.lr_decay))));
      break;
    case OptimKind::NAdam: {
      s.bias = C(sub(1.0, pow(h.beta2, step)));
      const double mu = nadam_mu(h, step), mu_next = nadam_mu(h, add(step, 1.0));
      const double mu_product_next = mul(mu_product, mu_next);
      s.grad_coef = C(div(mul(-lr, sub(1.0, mu)), sub(1.0, mu_product)));
      s.avg_coef = C(div(mul(-lr, mu_next), sub(1.0, mu_product_next)));
      break;
    }
    default:
      break;
  }
  return s;
}

// The per-parameter counters, advanced once per step before the elements are updated:
// step += 1 and, for NAdam, mu_product *= mu_step (both float32, as PyTorch keeps them).
ANVIL_HD inline void advance_counters(const OptimHyper& h, float* step, float* mu_product) {
  *step = add(*step, 1.0f);
  if (mu_product) *mu_product = mul(*mu_product, float(nadam_mu(h, double(*step))));
}

// Running average towards b with the launch's weight (torch.lerp_'s two formulas).
template <class C>
ANVIL_HD inline C lerp(const Consts<C>& k, C a, C b) {
  return k.lerp_from_end ? sub(b, mul(sub(b, a), k.lerp_weight))
                         : add(a, mul(sub(b, a), k.lerp_weight));
}

// The gradient with the sign flipped for maximize and L2 weight decay folded in.
template <class C>
ANVIL_HD inline C effective_grad(const Consts<C>& k, C p, C g) {
  C d = k.maximize ? -g : g;
  if (k.has_weight_decay) d = add(d, mul(p, k.weight_decay));
  return d;
}

// One element's update: p the parameter, g its gradient, s0..s2 the kind's state slots.
template <OptimKind K, class C>
ANVIL_HD inline void update(const Consts<C>& k, const Scalars<C>& t, bool fresh, C& p, C g, C& s0,
                            C& s1, C& s2) {
  if constexpr (K == OptimKind::SGD) {
    C d = effective_grad(k, p, g);
    if (k.has_momentum) {
      s0 = fresh ? d : add(mul(s0, k.momentum), mul(d, k.one_minus_dampening));
      d = k.nesterov ? add(d, mul(s0, k.momentum)) : s0;
    }
    p = add(p, mul(d, t.neg_lr));
  } else if constexpr (K == OptimKind::Adam || K == OptimKind::NAdam) {
    C d = k.maximize ? -g : g;
    if (k.has_weight_decay) {
      if (k.decoupled)
        p = mul(p, t.decay);
      else
        d = add(d, mul(p, k.weight_decay));
    }
    s0 = lerp(k, s0, d);
    s1 = add(mul(s1, k.beta2), mul(mul(d, d), k.one_minus_beta2));
    if constexpr (K == OptimKind::Adam) {
      C v = s1;
      if (k.amsgrad) v = s2 = maximum(s2, s1);
      const C denom = add(div(sqrt(v), t.bias), k.eps);
      p = add(p, mul(div(s0, denom), t.neg_lr));
    } else {
      const C denom = add(sqrt(div(s1, t.bias)), k.eps);
      p = add(p, mul(div(d, denom), t.grad_coef));
      p = add(p, mul(div(s0, denom), t.avg_coef));
    }
  } else if constexpr (K == OptimKind::RMSprop) {
    const C d = effective_grad(k, p, g);
    s0 = add(mul(s0, k.alpha), mul(mul(d, d), k.one_minus_alpha));
    C avg;
    if (k.centered) {
      s2 = lerp(k, s2, d);
      avg = sqrt(sub(s0, mul(s2, s2)));
    } else {
      avg = sqrt(s0);
    }
    avg = add(avg, k.eps);
    if (k.has_momentum) {
      s1 = add(mul(s1, k.momentum), div(d, avg));
      p = add(p, mul(s1, t.neg_lr));
    } else {
      p = add(p, mul(div(d, avg), t.neg_lr));
    }
  } else if constexpr (K == OptimKind::Adagrad) {
    const C d = effective_grad(k, p, g);
    s0 = add(s0, mul(d, d));
    p = add(p, mul(div(d, add(sqrt(s0), k.eps)), t.neg_lr));
  } else if constexpr (K == OptimKind::Adadelta) {
    const C d = effective_grad(k, p, g);
    s0 = add(mul(s0, k.rho), mul(mul(d, d), k.one_minus_rho));
    const C std_dev = sqrt(add(s0, k.eps));
    const C delta = mul(div(sqrt(add(s1, k.eps)), std_dev), d);
    s1 = add(mul(s1, k.rho), mul(mul(delta, delta), k.one_minus_rho));
    p = add(p, mul(delta, t.neg_lr));
  }
}

// clip_grad_norm_'s coefficient min(max_norm / (total + 1e-6), 1) in total's compute type C,
// each step rounded to total's storage type by `round` (as the composed ops did); NaN
// propagates. max_norm and tiny (1e-6) come already rounded.
template <class C, class Round>
ANVIL_HD inline C clip_coefficient(C total, C max_norm, C tiny, Round round) {
  const C coef = round(div(max_norm, round(add(total, tiny))));
  return (coef != coef || coef < C(1)) ? coef : C(1);
}

// GradScaler.update's schedule, as torch._amp_update_scale_: after an overflow the scale backs
// off and the count of good steps restarts; after growth_interval good steps in a row it grows
// (unless that overflows float32) and the count restarts.
ANVIL_HD inline void update_scale(float* scale, int32_t* growth_tracker, float found_inf,
                                  double growth_factor, double backoff_factor,
                                  int64_t growth_interval) {
  if (found_inf != 0.0f) {  // NaN counts as found, as PyTorch's `if (*found_inf)`
    *scale = float(double(*scale) * backoff_factor);
    *growth_tracker = 0;
    return;
  }
  const int32_t successful = *growth_tracker + 1;
  if (successful == growth_interval) {
    const float grown = float(double(*scale) * growth_factor);
    if (grown - grown == 0.0f) *scale = grown;  // finite
    *growth_tracker = 0;
  } else {
    *growth_tracker = successful;
  }
}

// 1 / scale as PyTorch computes it (scale.double().reciprocal().float()).
ANVIL_HD inline float inverse_scale(float scale) { return float(div(1.0, double(scale))); }

}  // namespace optim_math
}  // namespace anvil::backend
