// The CUDA sweep of the fused optimizer updates, gradient clipping and GradScaler against the
// CPU, for every floating parameter dtype (see support/sweep.h; optimizers refuse integer
// parameters with ValueError, so those are not swept): two steps of each optimizer with
// options reaching its branches, parameters and state compared; clip_grad_norm_ (2-norm and
// inf-norm) with the norm and the clipped gradients; GradScaler's unscale, step and update
// after a good step and after an overflow. Skipped without a GPU.
#include <cmath>
#include <functional>
#include <memory>

#include "support/sweep.h"

using namespace anvil;
using namespace anvil::test::sweep;

namespace {

const Shape kShape = {37, 111};  // 4107 elements

// A parameter and its gradient.
Tensors parameter_and_gradient(DType dt) { return {values(kShape, 1, dt), values(kShape, 2, dt)}; }

// A parameter leaf (detached from the sweep's leaf, which needs no gradient) with `grad`.
Tensor parameter(const Tensor& value, const Tensor& grad) {
  Tensor p = value.clone().detach().requires_grad_();
  p.set_grad(grad.clone());
  return p;
}

using MakeOptimizer = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

template <class O, class Options>
MakeOptimizer make(Options o) {
  return [o](std::vector<Tensor> ps) { return std::make_unique<O>(std::move(ps), o); };
}

// Two steps with the same gradient; outputs: the parameter, then its state in key order.
Case optimizer(const char* op, MakeOptimizer make_optimizer) {
  return {.op = op,
          .dtypes = kFloats,
          .others_refused = false,
          .inputs = parameter_and_gradient,
          .body = [make_optimizer](const Args& a) -> Tensors {
            Tensor p = parameter(a.in[0], a.in[1]);
            auto opt = make_optimizer({p});
            opt->step();
            opt->step();
            Tensors out = {p.detach()};
            for (const auto& [key, t] : opt->state(p)) out.push_back(t);
            return out;
          }};
}

std::vector<Case> optimizer_cases() {
  using namespace optim;
  return {
      optimizer("sgd_nesterov",
                make<SGD>(SGDOptions{
                    .lr = 0.05, .momentum = 0.8, .weight_decay = 0.1, .nesterov = true})),
      optimizer("sgd_dampened_maximize", make<SGD>(SGDOptions{.lr = 0.05,
                                                              .momentum = 0.9,
                                                              .dampening = 0.3,
                                                              .weight_decay = 0.01,
                                                              .maximize = true})),
      optimizer(
          "adam_amsgrad",
          make<Adam>(AdamOptions{.lr = 0.02, .beta1 = 0.3, .weight_decay = 0.1, .amsgrad = true})),
      optimizer("adamw", make<AdamW>(AdamWOptions{.lr = 0.05, .weight_decay = 0.3})),
      optimizer("rmsprop_centered", make<RMSprop>(RMSpropOptions{.lr = 0.01,
                                                                 .alpha = 0.3,
                                                                 .weight_decay = 0.01,
                                                                 .momentum = 0.5,
                                                                 .centered = true,
                                                                 .maximize = true})),
      optimizer(
          "adagrad",
          make<Adagrad>(AdagradOptions{
              .lr = 0.1, .lr_decay = 0.01, .weight_decay = 0.1, .initial_accumulator_value = 0.1})),
      optimizer("adadelta",
                make<Adadelta>(AdadeltaOptions{.lr = 0.5, .rho = 0.5, .weight_decay = 0.1})),
      optimizer("nadam_decoupled",
                make<NAdam>(
                    NAdamOptions{.lr = 0.01, .weight_decay = 0.1, .decoupled_weight_decay = true})),
  };
}

// ---- clipping and loss scaling -------------------------------------------------------------

// Two parameters of different shapes, each with a gradient.
Tensors two_parameters(DType dt) {
  return {values(kShape, 1, dt), values(kShape, 2, dt), values({13, 5, 67}, 3, dt),
          values({13, 5, 67}, 4, dt)};
}

// The total norm and the clipped gradients.
Case clipping(const char* op, double norm_type) {
  return {.op = op,
          .dtypes = kFloats,
          .others_refused = false,
          .inputs = two_parameters,
          .body = [norm_type](const Args& a) -> Tensors {
            Tensor p = parameter(a.in[0], a.in[1]), q = parameter(a.in[2], a.in[3]);
            Tensor norm = optim::clip_grad_norm_({p, q}, 0.5, norm_type);
            return {norm, p.grad(), q.grad()};
          },
          .precision = Precision::Accumulating};
}

// unscale_, step and update of a GradScaler (scale 1024, growing after every good step) around
// SGD; gradient element (3, 5) set to `poison` (inf: the step is skipped, the scale backs off).
// Outputs: the parameter, its unscaled gradient and the new scale.
Case scaled_step(const char* op, double poison) {
  return {.op = op,
          .dtypes = kFloats,
          .others_refused = false,
          .inputs = parameter_and_gradient,
          .body = [poison](const Args& a) -> Tensors {
            Tensor grad = mul(a.in[1], 1024.0);
            grad.select(0, 3).select(0, 5).fill_(poison);
            Tensor p = parameter(a.in[0], grad);
            optim::SGD opt({p}, optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
            amp::GradScaler scaler(
                a.device.kind, amp::GradScalerOptions{.init_scale = 1024, .growth_interval = 1});
            scaler.scale(zeros({}, a.options()));  // creates the scale on the device
            scaler.unscale_(opt);
            scaler.step(opt);
            scaler.update();
            return {p.detach(), p.grad(), scaler.scale_tensor()};
          }};
}

std::vector<Case> scaling_cases() {
  return {
      clipping("clip_grad_norm", 2.0),
      clipping("clip_grad_norm_inf", INFINITY),
      scaled_step("grad_scaler_step", 0.25),
      scaled_step("grad_scaler_overflow", INFINITY),
  };
}

std::vector<Case> all_cases() {
  std::vector<Case> all;
  for (auto family : {optimizer_cases, scaling_cases})
    for (Case& c : family()) all.push_back(std::move(c));
  return all;
}

class CudaSweepOptim : public ::testing::TestWithParam<Param> {};

TEST_P(CudaSweepOptim, CpuReference) { check_reference(GetParam()); }
TEST_P(CudaSweepOptim, MatchesCpu) { check(GetParam()); }

INSTANTIATE_TEST_SUITE_P(, CudaSweepOptim, ::testing::ValuesIn(params(all_cases())), name);

}  // namespace
