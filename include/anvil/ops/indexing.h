// Gathering and scattering by integer indices (int64 or int32).
#pragma once
#include "anvil/core/tensor.h"

namespace anvil {

// Rows of weight [num, dim] for each index: output indices.shape() + [dim]. Rows equal to
// padding_idx (if >= 0) get no gradient. Throws IndexError for an index outside [0, num).
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx = -1);
// Entries of `a` along `dim` at the 1-D `index`.
Tensor index_select(const Tensor& a, int64_t dim, const Tensor& index);
// out[i][j] = a[index[i][j]][j] (dim 0), etc.; index has a's rank.
Tensor gather(const Tensor& a, int64_t dim, const Tensor& index);
// Copy of `a` with src added at `index` along `dim` (torch.scatter_add).
Tensor scatter_add(const Tensor& a, int64_t dim, const Tensor& index, const Tensor& src);
// int64 one-hot encoding: shape indices.shape() + [num_classes]; num_classes = -1 infers
// max + 1. Throws IndexError for indices outside [0, num_classes).
Tensor one_hot(const Tensor& indices, int64_t num_classes = -1);

}  // namespace anvil
