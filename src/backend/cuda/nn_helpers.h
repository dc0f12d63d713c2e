// Small CUDA kernels that the library-backed matmul and convolution need (nn_helpers.cu).
// The caller holds a DeviceGuard; operands are contiguous.
#pragma once
#include "anvil/core/tensor.h"

namespace anvil::cuda {

// out[b] = op(a[b]) * op(b[b]) for int32/int64/uint8, wrapping on overflow as the CPU does.
void integer_matmul(const Tensor& out, const Tensor& a, const Tensor& b, bool trans_a,
                    bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k);

// x [N, C, S] += bias [C] (floating dtypes; bias of x's dtype), then x = relu(x) when `relu`
// (NaN stays NaN, as UnaryOp::Relu). bias may be undefined (relu alone).
void add_channel_bias(const Tensor& x, const Tensor& bias, int64_t batch, int64_t channels,
                      int64_t spatial, bool relu = false);

// sums [C] = x [N, C, S] summed over N and S (floating dtypes; sums of x's dtype).
void channel_sums(const Tensor& sums, const Tensor& x, int64_t batch, int64_t channels,
                  int64_t spatial);

}  // namespace anvil::cuda
