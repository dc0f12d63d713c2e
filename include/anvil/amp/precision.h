// TF32 for float32 matrix products and convolutions on CUDA, as
// torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32 together.
//
// Off by default: float32 products are exact IEEE float32 (cuBLASLt CUBLAS_COMPUTE_32F, cuDNN
// FMA math). On: Ampere-and-later tensor cores round the inputs to TF32 (10-bit mantissa) and
// accumulate in float32, several times faster at about 1e-3 relative error. The switch is
// process-wide and read when an op launches, so a CUDA graph keeps the mode it was captured
// with. CPU ops ignore it. In a build without CUDA the value is only remembered.
#pragma once

namespace anvil {

void set_allow_tf32(bool allow);
bool allow_tf32();

namespace detail {
// Set by the CUDA backend when it is linked in (src/backend/cuda/amp_hooks.cpp).
extern void (*set_allow_tf32_hook)(bool allow);
extern bool (*allow_tf32_hook)();
}  // namespace detail

}  // namespace anvil
