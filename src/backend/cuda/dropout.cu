// CUDA dropout, bit for bit the CPU kernel: one thread per Philox block (4 elements), or per
// one or two blocks read and written as 16-byte vectors (vec.cuh), drawing the float32
// uniforms rand() draws, so a seed drops the same elements on both backends. The
// products round once in the compute type and once to the storage type, as mul's do.
#include "backend/cuda/launch.cuh"
#include "backend/cuda/philox.cuh"
#include "backend/cuda/stream.h"
#include "backend/dropout_kernels.h"

namespace anvil::cuda {
namespace {
using backend::DropoutArgs;

// Elements per thread of the vector walk: whole Philox blocks, 16 bytes of x.
template <class T>
constexpr int dropout_width() {
  return sizeof(T) >= 4 ? 4 : 16 / int(sizeof(T));
}

// One dropout of one launch: the keep threshold, the scale in the compute type, and the Philox
// key and first counter.
template <class T>
struct Dropout {
  float keep_below;
  compute_t<T> scale;
  uint64_t seed, first;

  // The element whose uniform is lane `lane` of `bits`.
  __device__ void one(const PhiloxBlock& bits, int lane, T x, T& out, bool& mask) const {
    const bool keep = uint32_to_uniform_float(bits.x[lane]) < keep_below;
    mask = keep;
    // x * 0 for a dropped element, as the composed mul does (-0 and NaN included).
    out = down<T>(up(x) * (keep ? scale : compute_t<T>(0)));
  }
  // The elements of Philox block blk below n, one at a time.
  __device__ void block(int64_t blk, T* out, bool* mask, const T* x, int64_t n) const {
    const PhiloxBlock bits = philox4x32(first + uint64_t(blk), 0, seed);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int64_t i = blk * 4 + k;
      if (i >= n) break;
      one(bits, k, x[i], out[i], mask[i]);
    }
  }
};

// vector: x, out and mask aligned for dropout_width<T>() elements; the grid strides over
// vectors of that many elements (whole Philox blocks) instead of over single blocks.
template <class T>
__global__ void dropout_kernel(DropoutArgs r, T* out, bool* mask, const T* x, int64_t n,
                               bool vector) {
  // During graph replay the seed and the base of the counters come from the device.
  const Dropout<T> d{r.keep_below, compute_t<T>(r.scale),
                     r.device_state ? r.device_state[0] : r.seed,
                     r.device_state ? r.device_state[1] + r.first_block : r.first_block};
  if (vector) {
    constexpr int V = dropout_width<T>();
    ANVIL_GRID_STRIDE(c, (n + V - 1) / V) {
      const int64_t i = c * V;
      if (i + V <= n) {
        const Vec<T, V> xv = load_vec<V>(x + i);
        Vec<T, V> ov;
        Vec<bool, V> mv;
#pragma unroll
        for (int b = 0; b < V / 4; ++b) {
          const PhiloxBlock bits = philox4x32(d.first + uint64_t(i / 4 + b), 0, d.seed);
#pragma unroll
          for (int k = 0; k < 4; ++k)
            d.one(bits, k, xv.v[4 * b + k], ov.v[4 * b + k], mv.v[4 * b + k]);
        }
        store_vec<V>(out + i, ov);
        store_vec<V>(mask + i, mv);
      } else {  // the last, partial vector
#pragma unroll 1
        for (int64_t blk = i / 4; blk * 4 < n; ++blk) d.block(blk, out, mask, x, n);
      }
    }
  } else {
    ANVIL_GRID_STRIDE(blk, (n + 3) / 4) d.block(blk, out, mask, x, n);
  }
}

template <class T>
struct MaskedScale {
  compute_t<T> scale;
  __device__ T operator()(T g, bool keep) const {
    return down<T>(up(g) * (keep ? scale : compute_t<T>(0)));
  }
};

void dropout_cuda(const DropoutArgs& r, const Tensor& out, const Tensor& mask, const Tensor& x) {
  const int64_t n = x.numel();
  if (n == 0) return;
  DeviceGuard guard(x.device().index);
  ANVIL_DISPATCH_FLOAT(x.dtype(), "dropout", [&] {
    using T = dev_t<scalar_t>;
    constexpr int V = dropout_width<T>();
    const bool vector = !scalar_elementwise() && aligned_for<T, V>(x.data_ptr()) &&
                        aligned_for<T, V>(out.data_ptr()) && aligned_for<bool, V>(mask.data_ptr());
    const int64_t items = vector ? (n + V - 1) / V : (n + 3) / 4;
    dropout_kernel<T><<<blocks_for(items), kThreads, 0, current_stream()>>>(
        r, static_cast<T*>(out.data_ptr()), mask.data<bool>(), static_cast<const T*>(x.data_ptr()),
        n, vector);
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

void dropout_backward_cuda(double scale, const Tensor& grad_in, const Tensor& grad_out,
                           const Tensor& mask) {
  DeviceGuard guard(grad_in.device().index);
  ANVIL_DISPATCH_FLOAT(grad_out.dtype(), "dropout_backward", [&] {
    using T = dev_t<scalar_t>;
    map2<T, T, bool>(grad_in, grad_out, mask, MaskedScale<T>{compute_t<T>(scale)});
  });
}

ANVIL_REGISTER_KERNEL(backend::dropout_kernels, CUDA, &dropout_cuda);
ANVIL_REGISTER_KERNEL(backend::dropout_backward_kernels, CUDA, &dropout_backward_cuda);

}  // namespace
}  // namespace anvil::cuda
