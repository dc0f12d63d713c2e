// The TF32 switch for float32 matrix products and convolutions on CUDA (include-free, so a
// caller needs no CUDA headers). Off by default: float32 math is exact IEEE float32 (cuBLASLt
// CUBLAS_COMPUTE_32F, cuDNN CUDNN_FMA_MATH). On: tensor-core TF32 (10-bit mantissa inputs,
// float32 accumulation), as torch.backends.{cuda.matmul,cudnn}.allow_tf32.
#pragma once

namespace anvil::cuda {

void set_allow_tf32(bool on);
bool allow_tf32();

}  // namespace anvil::cuda
