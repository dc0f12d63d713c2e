// avg_pool2d's forward through cuDNN (pool_cudnn.cpp), which pool.cu tries before its own
// kernel. Arguments as in backend/pool_kernels.h; the caller holds a DeviceGuard.
#pragma once
#include "backend/pool_kernels.h"

namespace anvil::cuda {

// True when cuDNN wrote `out`; false where it does not compute torch's result or declines.
bool avg_pool2d_cudnn(const backend::PoolArgs& a, const Tensor& out, const Tensor& input);

}  // namespace anvil::cuda
