// CUDA random fills from the same Philox counters and the same arithmetic as the CPU kernel,
// so a seed gives the same numbers on both. One thread per Philox block (4 values, or 2 for
// float64 and wide integer ranges). The double arithmetic uses explicitly rounded operations
// (__dmul_rn, __dadd_rn) so that nvcc does not contract it into FMAs the CPU does not use.
// Uniform and integer draws are bit-identical to the CPU; normal draws go through log, cos
// and sin, whose CUDA and glibc versions can differ in the last bit of a double (float32
// results round those differences away in all but rare cases).
#include "backend/cuda/launch.cuh"
#include "backend/cuda/philox.cuh"
#include "backend/cuda/stream.h"
#include "backend/random_kernels.h"

namespace anvil::cuda {
namespace {
using backend::RandomArgs;
using backend::RandomDist;

constexpr double kTwoPi = 6.283185307179586;

__device__ inline double uint32_to_uniform(uint32_t x) {
  return double(uint32_to_uniform_float(x));
}
__device__ inline double uint64_to_uniform(uint32_t hi, uint32_t lo) {
  return double(((uint64_t(hi) << 32) | lo) >> 11) * (1.0 / 9007199254740992.0);
}

struct RandomParams {
  RandomDist dist;
  uint64_t seed, first_block;
  const uint64_t* device_state;  // {seed, base} during graph replay (first_block is relative)
  double a, b;
  long long low;       // Integer: int64(a)
  uint64_t range;      // Integer: b - a
};

template <class T>
__global__ void random_kernel(RandomParams r, T* y, int64_t n, int per) {
  const bool wide = per == 2;
  const int64_t blocks = (n + per - 1) / per;
  const uint64_t seed = r.device_state ? r.device_state[0] : r.seed;
  const uint64_t first = r.device_state ? r.device_state[1] + r.first_block : r.first_block;
  ANVIL_GRID_STRIDE(blk, blocks) {
    const PhiloxBlock x = philox4x32(first + uint64_t(blk), 0, seed);
    double v[4];
    if (wide) {
      v[0] = uint64_to_uniform(x.x[0], x.x[1]);
      v[1] = uint64_to_uniform(x.x[2], x.x[3]);
    } else {
#pragma unroll
      for (int k = 0; k < 4; ++k) v[k] = uint32_to_uniform(x.x[k]);
    }
    if (r.dist == RandomDist::Normal) {
      // Box-Muller on consecutive pairs: (u1, u2) -> r cos, r sin.
      for (int k = 0; k < per; k += 2) {
        const double u1 = __dadd_rn(1.0, -v[k]), u2 = v[k + 1];  // u1 in (0, 1]
        const double rad = sqrt(__dmul_rn(-2.0, log(u1)));
        const double scaled = __dmul_rn(r.b, rad), angle = __dmul_rn(kTwoPi, u2);
        v[k] = __dadd_rn(r.a, __dmul_rn(scaled, cos(angle)));
        v[k + 1] = __dadd_rn(r.a, __dmul_rn(scaled, sin(angle)));
      }
    }
    for (int k = 0; k < per; ++k) {
      const int64_t i = blk * per + k;
      if (i >= n) break;
      if (r.dist == RandomDist::Uniform) {
        y[i] = down<T>(__dadd_rn(r.a, __dmul_rn(__dadd_rn(r.b, -r.a), v[k])));
      } else if (r.dist == RandomDist::Normal) {
        y[i] = down<T>(v[k]);
      } else {
        const uint64_t bits = wide ? ((uint64_t(x.x[2 * k]) << 32) | x.x[2 * k + 1]) : x.x[k];
        const long long value = r.low + static_cast<long long>(bits % r.range);
        y[i] = down<T>(compute_t<T>(value));
      }
    }
  }
}

void random_cuda(const RandomArgs& r, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  const int per = int(backend::random_per_block(r, out.dtype()));
  RandomParams p{r.dist, r.seed, r.first_block, r.device_state, r.a, r.b, 0, 0};
  if (r.dist == RandomDist::Integer) {
    p.low = static_cast<long long>(int64_t(r.a));
    p.range = uint64_t(r.b - r.a);
    ANVIL_CHECK(p.range > 0, ValueError, "random: empty integer range [", r.a, ", ", r.b, ")");
  }
  const int64_t blocks = (n + per - 1) / per;
  ANVIL_DISPATCH_NUMERIC(out.dtype(), "random", [&] {
    using T = dev_t<scalar_t>;
    random_kernel<T><<<blocks_for(blocks), kThreads, 0, current_stream()>>>(p, static_cast<T*>(out.data_ptr()), n, per);
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

ANVIL_REGISTER_KERNEL(backend::random_kernels, CUDA, &random_cuda);

}  // namespace
}  // namespace anvil::cuda
