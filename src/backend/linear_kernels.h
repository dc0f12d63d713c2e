// A dense layer with its bias and activation in one kernel (cuBLASLt epilogues on CUDA), and its
// weight gradient with the bias gradient. The op layer hands contiguous floating operands of
// one dtype: x [M, K], w [N, K], b [N] (undefined: no bias), out [M, N].
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

enum class LinearAct { None, Relu, GeluTanh };

// out = act(x w^T + b), rounded as matmul, then add, then the activation would round it. With
// keep_pre it also returns pre = x w^T + b ([M, N], possibly a view with a padded row stride),
// which gelu's gradient needs; otherwise an undefined tensor.
using LinearActFn = Tensor(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& b,
                           LinearAct act, bool keep_pre);

inline constinit KernelTable<LinearActFn> linear_act_kernels{"linear_act"};

// The weight gradient gw [N, K] = g^T x of g [M, N] and x [M, K] (contiguous), and, when gb is
// defined, the bias gradient gb [N] = the column sums of g (in the same product where the
// backend can).
using LinearWgradFn = void(const Tensor& gw, const Tensor& gb, const Tensor& g, const Tensor& x);

inline constinit KernelTable<LinearWgradFn> linear_wgrad_kernels{"linear_wgrad"};

}  // namespace anvil::backend
