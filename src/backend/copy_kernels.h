// Copy, cast and fill. dst and src have the same shape but any strides, dtypes and (for copy)
// devices; a copy that crosses devices runs the kernel of the non-CPU device.
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

using CopyFn = void(const Tensor& dst, const Tensor& src);
using FillFn = void(const Tensor& dst, const Scalar& value);

inline constinit KernelTable<CopyFn> copy_kernels{"copy_"};
inline constinit KernelTable<FillFn> fill_kernels{"fill_"};

}  // namespace anvil::backend
