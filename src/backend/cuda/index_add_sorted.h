// index_add without atomics, for deterministic mode (anvil/core/determinism.h): the index is
// sorted (stably, with CUB's radix sort) so that the source rows for each destination row sit
// together in their original order, and one block per destination row adds them in that
// order. The same inputs give the same bits run after run, and a CUDA graph captures it.
#pragma once
#include "anvil/core/tensor.h"

namespace anvil::cuda {

// out [outer, n, inner] += src [outer, k, inner] at index [k] (int32 or int64) along the
// middle dim; floating dtypes. `bad` is the device flag of the index's range check: nothing is
// written when it is set.
void index_add_sorted(const Tensor& out, const Tensor& src, const Tensor& index, int64_t outer,
                      int64_t k, int64_t inner, int64_t n, const unsigned long long* bad);

}  // namespace anvil::cuda
