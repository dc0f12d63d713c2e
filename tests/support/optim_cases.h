// Every optimizer with options that reach every branch of its update, and helpers around
// them, shared by the CPU and CUDA optimizer and mixed-precision tests.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "anvil/optim/optim.h"
#include "support/check.h"

namespace anvil::test {

using MakeOpt = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

template <class O, class Opts>
inline MakeOpt make(Opts o) {
  return [o](std::vector<Tensor> ps) { return std::make_unique<O>(std::move(ps), o); };
}

inline std::vector<MakeOpt> optimizer_cases() {
  using namespace optim;
  return {
      make<SGD>(SGDOptions{.lr = 0.1}),
      make<SGD>(SGDOptions{.lr = 0.05, .momentum = 0.9, .dampening = 0.3, .weight_decay = 0.01}),
      make<SGD>(SGDOptions{
          .lr = 0.05, .momentum = 0.8, .weight_decay = 0.1, .nesterov = true, .maximize = true}),
      make<Adam>(AdamOptions{}),
      make<Adam>(AdamOptions{.lr = 0.02, .beta1 = 0.3, .weight_decay = 0.1, .amsgrad = true}),
      make<Adam>(
          AdamOptions{.lr = 0.05, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .maximize = true}),
      make<AdamW>(AdamWOptions{.lr = 0.01}),
      make<AdamW>(AdamWOptions{.lr = 0.05, .weight_decay = 0.3, .amsgrad = true}),
      make<RMSprop>(RMSpropOptions{}),
      make<RMSprop>(RMSpropOptions{.lr = 0.01,
                                   .alpha = 0.3,
                                   .weight_decay = 0.01,
                                   .momentum = 0.5,
                                   .centered = true,
                                   .maximize = true}),
      make<RMSprop>(RMSpropOptions{.lr = 0.005, .alpha = 0.9, .momentum = 0.9}),
      make<Adagrad>(AdagradOptions{.lr = 0.1}),
      make<Adagrad>(AdagradOptions{.lr = 0.1,
                                   .lr_decay = 0.01,
                                   .weight_decay = 0.1,
                                   .initial_accumulator_value = 0.1,
                                   .maximize = true}),
      make<Adadelta>(AdadeltaOptions{}),
      make<Adadelta>(AdadeltaOptions{.lr = 0.5, .rho = 0.5, .weight_decay = 0.1, .maximize = true}),
      make<NAdam>(NAdamOptions{}),
      make<NAdam>(NAdamOptions{
          .lr = 0.01, .beta1 = 0.4, .weight_decay = 0.1, .momentum_decay = 1e-2, .maximize = true}),
      make<NAdam>(NAdamOptions{.lr = 0.01, .weight_decay = 0.1, .decoupled_weight_decay = true}),
  };
}

// Tensors of the given shapes, uniform in [lo, hi), from seeds derived from `seed`.
inline std::vector<Tensor> random_tensors(const std::vector<Shape>& shapes, uint64_t seed,
                                          DType dt, double lo = -1, double hi = 1) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < shapes.size(); ++i)
    out.push_back(uniform(shapes[i], seed * 1000 + i, lo, hi, dt));
  return out;
}

// Everything an optimizer step may change, as float32 host values: each parameter and its
// state (so that a skipped or replayed step can be compared bit for bit).
inline std::vector<std::vector<float>> snapshot(const optim::Optimizer& opt,
                                                const std::vector<Tensor>& params) {
  auto values = [](const Tensor& t) {
    return t.detach().to(kCPU).to(kFloat32).to_vector<float>();
  };
  std::vector<std::vector<float>> out;
  for (const Tensor& p : params) {
    out.push_back(values(p));
    for (const auto& [key, t] : opt.state(p)) out.push_back(values(t));
  }
  return out;
}

}  // namespace anvil::test
