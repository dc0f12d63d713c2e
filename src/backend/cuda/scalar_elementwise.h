// The benchmarking switch of the element-wise kernels (launch.cuh's map1/map2/map3, copy.cu's
// casts, dropout.cu): on, they take their scalar path (one element per thread and access)
// even where the vector path (vec.cuh) applies, as they did before it existed; the results
// are the same bits either way. Off by default; the environment variable
// ANVIL_CUDA_SCALAR_ELEMENTWISE=1, read once when the library loads, turns it on, and
// bench/bench_elementwise flips it to time one path against the other. Include-free, so a
// caller needs no CUDA headers.
#pragma once

namespace anvil::cuda {

void set_scalar_elementwise(bool on);
bool scalar_elementwise();

}  // namespace anvil::cuda
