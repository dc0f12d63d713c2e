// cuDNN benchmark mode (torch.backends.cudnn.benchmark): when on, the first CUDA convolution
// of each geometry, dtype, direction and memory layout times cuDNN's candidate algorithms on
// the real buffers (cudnnFind*, which waits for the device) and keeps the fastest; later
// calls of that geometry reuse the choice. When off, algorithms come from cuDNN's heuristics
// without timing. Deterministic mode and float32 without TF32 restrict the candidates either
// way. A first call made while a CUDA graph is being captured uses the heuristics, so run an
// eager warm-up step before capturing. Off by default, as in PyTorch; no effect on the CPU.
#pragma once

namespace anvil {

void set_cudnn_benchmark(bool on);
bool cudnn_benchmark_enabled();

}  // namespace anvil
