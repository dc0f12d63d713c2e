// Random fills from Philox counters (see anvil/core/generator.h for the scheme).
// `out` is contiguous. Element i of a 32-bit draw uses block first_block + i / 4, lane i % 4;
// float64 and wide integer ranges use two lanes per element (block i / 2).
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

enum class RandomDist { Uniform, Normal, Integer };

struct RandomArgs {
  RandomDist dist = RandomDist::Uniform;
  uint64_t seed = 0;
  uint64_t first_block = 0;
  double a = 0, b = 1;  // Uniform [a, b); Normal mean a, std b; Integer [a, b)
  // Set inside a CUDA graph capture: {seed, base} in device memory, first_block relative to
  // base (see Generator::Draw). CUDA only.
  const uint64_t* device_state = nullptr;
};

// Values drawn per Philox block: 2 for float64 and integer ranges wider than 2^32, else 4.
inline int64_t random_per_block(const RandomArgs& r, DType dtype) {
  bool wide = dtype == kFloat64 || (r.dist == RandomDist::Integer && r.b - r.a > 4294967296.0);
  return wide ? 2 : 4;
}
// How many Philox blocks a fill of n elements uses (so the generator can reserve them).
inline uint64_t random_blocks(const RandomArgs& r, DType dtype, int64_t n) {
  int64_t per = random_per_block(r, dtype);
  return uint64_t((n + per - 1) / per);
}

using RandomFn = void(const RandomArgs& args, const Tensor& out);

inline constinit KernelTable<RandomFn> random_kernels{"random"};

}  // namespace anvil::backend
