// Deterministic mode (torch.use_deterministic_algorithms): when on, every kernel gives
// bit-identical results for identical inputs run after run. cuDNN convolutions then use only
// algorithms cuDNN marks deterministic; index_add and the backward of index_select/embedding
// on floating CUDA tensors sort their index and add each row's sources in order instead of
// with atomics; fused attention's backward sums its query gradients without atomics; and ops
// whose CUDA kernels still only accumulate with atomics in an unspecified order (scatter_add
// on floating tensors) throw DeviceError naming themselves instead of running. CPU kernels are
// deterministic either way. Off by default, since the fastest convolution algorithms are not.
#pragma once

namespace anvil {

void use_deterministic_algorithms(bool on);
bool are_deterministic_algorithms_enabled();

}  // namespace anvil
