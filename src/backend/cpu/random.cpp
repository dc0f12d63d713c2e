// CPU random fills: the same Philox counters as the CUDA kernels, so seeds agree.
#include <cmath>

#include "anvil/core/generator.h"
#include "backend/cpu/loops.h"
#include "backend/random_kernels.h"

namespace anvil::cpu {
namespace {
using backend::RandomArgs;
using backend::RandomDist;

constexpr double kTwoPi = 6.283185307179586;

template <class T>
void fill_random(const RandomArgs& r, const Tensor& out) {
  ANVIL_CHECK(!r.device_state, DeviceError, "random: CPU draws cannot be captured in a CUDA graph");
  T* y = out.data<T>();
  const int64_t n = out.numel();
  const int64_t per = backend::random_per_block(r, out.dtype());
  const bool wide = per == 2;
  const int64_t blocks = (n + per - 1) / per;
  parallel_for(blocks, 16, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      auto x = philox4x32(r.first_block + uint64_t(blk), 0, r.seed);
      double v[4];
      if (wide) {
        v[0] = uint64_to_uniform(x[0], x[1]);
        v[1] = uint64_to_uniform(x[2], x[3]);
      } else {
        for (int k = 0; k < 4; ++k) v[k] = uint32_to_uniform(x[k]);
      }
      if (r.dist == RandomDist::Normal) {
        // Box-Muller on consecutive pairs: (u1, u2) -> r cos, r sin.
        for (int k = 0; k < per; k += 2) {
          double u1 = 1.0 - v[k], u2 = v[k + 1];  // u1 in (0, 1]
          double rad = std::sqrt(-2.0 * std::log(u1));
          v[k] = r.a + r.b * rad * std::cos(kTwoPi * u2);
          v[k + 1] = r.a + r.b * rad * std::sin(kTwoPi * u2);
        }
      }
      for (int k = 0; k < per; ++k) {
        int64_t i = blk * per + k;
        if (i >= n) break;
        if (r.dist == RandomDist::Uniform) {
          y[i] = T(r.a + (r.b - r.a) * v[k]);
        } else if (r.dist == RandomDist::Normal) {
          y[i] = T(v[k]);
        } else {
          uint64_t range = uint64_t(r.b - r.a);
          uint64_t bits = wide ? ((uint64_t(x[2 * k]) << 32) | x[2 * k + 1]) : x[k];
          y[i] = T(compute_t<T>(int64_t(r.a) + int64_t(bits % range)));
        }
      }
    }
  });
}

void random_cpu(const RandomArgs& r, const Tensor& out) {
  ANVIL_DISPATCH_NUMERIC(out.dtype(), "random", [&] { fill_random<scalar_t>(r, out); });
}

ANVIL_REGISTER_KERNEL(backend::random_kernels, CPU, &random_cpu);

}  // namespace
}  // namespace anvil::cpu
