// Philox-4x32-10 on the device, bit for bit anvil::philox4x32 on the host (core/generator.h),
// and the float32 uniform made from one of its lanes (random.cu and dropout.cu draw with it).
#pragma once
#include <cstdint>

namespace anvil::cuda {

struct PhiloxBlock {
  uint32_t x[4];
};

__device__ inline PhiloxBlock philox4x32(uint64_t counter_lo, uint64_t counter_hi, uint64_t key) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = uint32_t(counter_lo), c1 = uint32_t(counter_lo >> 32);
  uint32_t c2 = uint32_t(counter_hi), c3 = uint32_t(counter_hi >> 32);
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(kM0) * c0, p1 = uint64_t(kM1) * c2;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n1 = uint32_t(p1);
    const uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1, n3 = uint32_t(p0);
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += kW0;
    k1 += kW1;
  }
  return {{c0, c1, c2, c3}};
}

// A uniform float in [0, 1) from the top 24 bits, as anvil::uint32_to_uniform (exact: a
// 24-bit integer times a power of two).
__device__ inline float uint32_to_uniform_float(uint32_t x) {
  return float(x >> 8) * (1.0f / 16777216.0f);
}

}  // namespace anvil::cuda
