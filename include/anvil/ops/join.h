// Joining and splitting tensors along a dim.
#pragma once
#include <vector>

#include "anvil/core/tensor.h"

namespace anvil {

// Shapes must match except along `dim`; dtypes promote.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
// Inserts a new dim at `dim`; all shapes must match.
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
// Views of `split_size` along dim (the last may be smaller).
std::vector<Tensor> split(const Tensor& a, int64_t split_size, int64_t dim = 0);
// Views of the given sizes, which must add up to a.size(dim).
std::vector<Tensor> split(const Tensor& a, const std::vector<int64_t>& sizes, int64_t dim = 0);
// `chunks` views of ceil(size / chunks) (fewer when the size runs out), as torch.chunk.
std::vector<Tensor> chunk(const Tensor& a, int64_t chunks, int64_t dim = 0);

}  // namespace anvil
