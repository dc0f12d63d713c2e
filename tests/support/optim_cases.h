// Every optimizer with options that reach every branch of its update, shared by the CPU
// tests (fused vs composed updates) and the CUDA tests (CUDA vs CPU).
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "anvil/optim/optim.h"

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

}  // namespace anvil::test
