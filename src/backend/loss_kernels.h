// Fused cross-entropy (log-softmax + NLL, with class weights, ignore_index and label
// smoothing) over rows of contiguous logits [M, C] and int64 targets [M]. `weight` is a
// contiguous float64 [C] tensor, or undefined for weight 1 everywhere.
//
// Row i with target t (not ignored), logp = log_softmax(logits[i]), e = smoothing:
//   loss[i] = -(1 - e) w_t logp_t - (e / C) sum_c w_c logp_c,   row_weight[i] = w_t
// and both are 0 for an ignored row.
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

struct CrossEntropyArgs {
  int64_t ignore_index = -100;
  double smoothing = 0.0;
};

// Writes loss [M] and row_weight [M] (both float64). Throws IndexError for a target outside
// [0, C) other than ignore_index, before computing anything.
using CrossEntropyFn = void(const CrossEntropyArgs& args, const Tensor& loss,
                            const Tensor& row_weight, const Tensor& logits, const Tensor& target,
                            const Tensor& weight);
// grad_logits [M, C] (logits' dtype) = grad_loss[i] * d loss[i] / d logits[i], with grad_loss
// a contiguous float64 [M]:
//   p_c ((1 - e) w_t + (e / C) sum(w)) - (1 - e) w_t [c == t] - (e / C) w_c
using CrossEntropyBackwardFn = void(const CrossEntropyArgs& args, const Tensor& grad_logits,
                                    const Tensor& grad_loss, const Tensor& logits,
                                    const Tensor& target, const Tensor& weight);

inline constinit KernelTable<CrossEntropyFn> cross_entropy_kernels{"cross_entropy"};
inline constinit KernelTable<CrossEntropyBackwardFn> cross_entropy_backward_kernels{
    "cross_entropy_backward"};

}  // namespace anvil::backend
