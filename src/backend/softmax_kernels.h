// Softmax and log-softmax along one dim. The op layer makes the input contiguous and views it
// as [outer, n, inner]: each of the outer * inner rows has n elements `inner` apart.
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

struct SoftmaxArgs {
  int64_t outer = 1, n = 1, inner = 1;
  bool log = false;  // log_softmax
};

// y = softmax(x) or log_softmax(x) (max subtracted); y and x contiguous, same dtype.
using SoftmaxFn = void(const SoftmaxArgs& args, const Tensor& y, const Tensor& x);
// gx from the output y and its gradient gy (all contiguous, one dtype):
//   softmax:     gx = y * (gy - sum(gy * y))
//   log_softmax: gx = gy - exp(y) * sum(gy)
using SoftmaxBackwardFn = void(const SoftmaxArgs& args, const Tensor& gx, const Tensor& gy,
                               const Tensor& y);

inline constinit KernelTable<SoftmaxFn> softmax_kernels{"softmax"};
inline constinit KernelTable<SoftmaxBackwardFn> softmax_backward_kernels{"softmax_backward"};

}  // namespace anvil::backend
