// Fused dropout: the forward draws, masks and scales in one pass; the backward scales the
// gradient by the saved mask. Both give bit for bit what the composed
// mul(x, mul(lt(rand(...), 1 - p).to(dtype), 1 / (1 - p))) gives, on every backend.
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"
#include "backend/random_kernels.h"

namespace anvil::backend {

struct DropoutArgs {
  // Philox draws as rand() takes them (see random_kernels.h): element i uses the float32
  // uniform of block first_block + i / 4, lane i % 4. Inside a CUDA graph capture,
  // device_state points to {seed, base} and first_block is relative to base. CUDA only.
  uint64_t seed = 0, first_block = 0;
  const uint64_t* device_state = nullptr;
  // Element i is kept when its uniform u < keep_below, compared in float32 as lt(u, 1 - p) is.
  float keep_below = 1;
  // 1 / (1 - p) as a scalar tensor of the input's dtype holds it: exact in the compute type.
  double scale = 1;
};

// How many Philox blocks a dropout of n elements draws: those of rand() with n float32 values.
inline uint64_t dropout_blocks(int64_t n) {
  return random_blocks(RandomArgs{.dist = RandomDist::Uniform}, kFloat32, n);
}

// out[i] = x[i] * (keep ? scale : 0) computed in x's compute type, mask[i] = keep. x and out
// are contiguous, of one floating dtype and shape; mask is contiguous bool of that shape.
using DropoutFn = void(const DropoutArgs& args, const Tensor& out, const Tensor& mask,
                       const Tensor& x);
// grad_in[i] = grad_out[i] * (mask[i] ? scale : 0) in grad_out's dtype (floating, any strides,
// the shape of grad_in); grad_in contiguous. `scale` is exact in that dtype's compute type.
using DropoutBackwardFn = void(double scale, const Tensor& grad_in, const Tensor& grad_out,
                               const Tensor& mask);

inline constinit KernelTable<DropoutFn> dropout_kernels{"dropout"};
inline constinit KernelTable<DropoutBackwardFn> dropout_backward_kernels{"dropout_backward"};

}  // namespace anvil::backend
