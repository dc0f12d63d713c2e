// Gathers and scatters by integer indices (int32 or int64). The op layer checks shapes and
// dtypes and makes every operand contiguous; a kernel checks the index values and reports a
// bad one as an IndexError naming `op`, the index and the valid range. The CPU kernels throw
// before writing anything; the CUDA kernels never touch memory out of range and record the
// error on the device, raised at the next synchronisation (backend/cuda/error_flag.h).
//
// For index_select/index_add the operands are seen as [outer, n, inner] around `dim`, with a
// 1-D index of k entries. For gather/scatter_add the index has the rank of the data tensors
// and each of its positions p names the element of the data tensor at p with coordinate `dim`
// replaced by index[p]; src (scatter_add) is at least as large as the index in every dim.
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

// out[o, j, i] = a[o, index[j], i]; out has k entries along dim.
using IndexSelectFn = void(const char* op, const Tensor& out, const Tensor& a, int64_t dim,
                           const Tensor& index);
// out[o, index[j], i] += src[o, j, i], in place (duplicate indices accumulate).
using IndexAddFn = void(const char* op, const Tensor& out, int64_t dim, const Tensor& index,
                        const Tensor& src);
// out[p] = a[p with coordinate dim = index[p]]; out has the index's shape.
using GatherFn = void(const char* op, const Tensor& out, const Tensor& a, int64_t dim,
                      const Tensor& index);
// out[p with coordinate dim = index[p]] += src[p] for every position p of index, in place.
using ScatterAddFn = void(const char* op, const Tensor& out, int64_t dim, const Tensor& index,
                          const Tensor& src);

inline constinit KernelTable<IndexSelectFn> index_select_kernels{"index_select"};
inline constinit KernelTable<IndexAddFn> index_add_kernels{"index_add"};
inline constinit KernelTable<GatherFn> gather_kernels{"gather"};
inline constinit KernelTable<ScatterAddFn> scatter_add_kernels{"scatter_add"};

}  // namespace anvil::backend
