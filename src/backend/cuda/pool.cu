// CUDA 2-D pooling. Max pooling is ours rather than cuDNN's: the table wants its argmax
// indices (cuDNN keeps none), and ours forward and backward together measured faster
// (bench/bench_pool.cpp). avg_pool2d's forward goes to cuDNN where cuDNN computes torch's
// divisors (pool_cudnn.cpp), and to our kernel elsewhere (ceil_mode's overhanging windows,
// float64, ...). Windows, tie-breaking (the first maximum, NaN propagating) and divisors are
// those of the CPU kernels in backend/cpu/pool.cpp. Forward: a thread per output element.
// Backward: a thread per input element gathering from the outputs whose windows hold it, in
// the CPU's order, so no atomics and deterministic results; the max and avg backwards index
// in 32 bits with multiply-shift division where the sizes allow.
#include <cmath>
#include <limits>

#include "backend/cuda/int_divider.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/pool_cudnn.h"
#include "backend/pool_kernels.h"

namespace anvil::cuda {
namespace {
using backend::PoolArgs;

// The plain-old-data geometry passed to the kernels.
struct Geo {
  int64_t planes, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw;
  bool include_pad;
};
Geo geo_of(const PoolArgs& a) {
  return {a.planes,   a.height,   a.width,  a.out_h, a.out_w,      a.kernel_h,
          a.kernel_w, a.stride_h, a.stride_w, a.pad_h, a.pad_w, a.dilation_h,
          a.dilation_w, a.count_include_pad};
}

template <class C> __device__ inline C lowest() {
  if constexpr (std::is_floating_point_v<C>) return -INFINITY;
  else return std::numeric_limits<C>::lowest();
}

template <class T>
__global__ void max_pool_kernel(Geo g, const T* x, T* y, int64_t* idx) {
  using C = compute_t<T>;
  ANVIL_GRID_STRIDE(o, g.planes * g.OH * g.OW) {
    const int64_t ow = o % g.OW, oh = (o / g.OW) % g.OH, p = o / (g.OW * g.OH);
    const T* xp = x + p * g.H * g.W;
    int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    const int64_t h1 = min(h0 + (g.kh - 1) * g.dh + 1, g.H);
    const int64_t w1 = min(w0 + (g.kw - 1) * g.dw + 1, g.W);
    while (h0 < 0) h0 += g.dh;
    while (w0 < 0) w0 += g.dw;
    C best = lowest<C>();
    int64_t best_i = h0 < h1 && w0 < w1 ? h0 * g.W + w0 : -1;
    for (int64_t h = h0; h < h1; h += g.dh)
      for (int64_t w = w0; w < w1; w += g.dw) {
        const C v = up(xp[h * g.W + w]);
        if (v > best || v != v) {
          best = v;
          best_i = h * g.W + w;
        }
      }
    y[o] = down<T>(best);
    idx[o] = best_i;
  }
}

// max_pool_backward_kernel's geometry in its index type, with the divisions by the plane's
// width and height and by the strides done by `Div`.
template <class Index, class Div>
struct GatherGeometry {
  Index H, W, OH, OW, ph, pw, span_h, span_w;  // span: a dilated window's extent
  Div by_W, by_H, by_sh, by_sw;
};

// The 64-bit divider, for tensors past 32-bit indices.
struct PlainDivider {
  int64_t d;
  __device__ int64_t div(int64_t n) const { return n / d; }
};

template <class T, class Index, class Div>
__global__ void max_pool_backward_kernel(GatherGeometry<Index, Div> g, Index total, const T* gy,
                                         const int64_t* idx, T* gx) {
  using C = compute_t<T>;
  const Index stride = Index(gridDim.x) * blockDim.x;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const Index q = g.by_W.div(i), w = i - q * g.W;
    const Index p = g.by_H.div(q), h = q - p * g.H;
    const int64_t pos = int64_t(h * g.W + w);
    // Outputs whose (dilated) window can reach (h, w), as torch's CUDA kernel bounds them.
    const Index oh0 = h + g.ph < g.span_h ? 0 : g.by_sh.div(h + g.ph - g.span_h) + 1;
    const Index ow0 = w + g.pw < g.span_w ? 0 : g.by_sw.div(w + g.pw - g.span_w) + 1;
    const Index oh1 = min(g.by_sh.div(h + g.ph) + 1, g.OH);
    const Index ow1 = min(g.by_sw.div(w + g.pw) + 1, g.OW);
    const Index base = p * g.OH * g.OW;
    C s = 0;
    for (Index oh = oh0; oh < oh1; ++oh)
      for (Index ow = ow0; ow < ow1; ++ow) {
        const Index o = base + oh * g.OW + ow;
        if (idx[o] == pos) s += up(gy[o]);
      }
    gx[i] = down<T>(s);
  }
}

template <class T, class Index, class Div>
void launch_max_pool_backward(const PoolArgs& a, Div by_W, Div by_H, Div by_sh, Div by_sw,
                              const Tensor& grad_input, const Tensor& grad_out,
                              const Tensor& indices) {
  const GatherGeometry<Index, Div> g{.H = Index(a.height),
                                     .W = Index(a.width),
                                     .OH = Index(a.out_h),
                                     .OW = Index(a.out_w),
                                     .ph = Index(a.pad_h),
                                     .pw = Index(a.pad_w),
                                     .span_h = Index((a.kernel_h - 1) * a.dilation_h + 1),
                                     .span_w = Index((a.kernel_w - 1) * a.dilation_w + 1),
                                     .by_W = by_W,
                                     .by_H = by_H,
                                     .by_sh = by_sh,
                                     .by_sw = by_sw};
  const int64_t total = grad_input.numel();
  max_pool_backward_kernel<T, Index, Div><<<blocks_for(total), kThreads, 0, current_stream()>>>(
      g, Index(total), static_cast<const T*>(grad_out.data_ptr()),
      static_cast<const int64_t*>(indices.data_ptr()), static_cast<T*>(grad_input.data_ptr()));
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

// The clipped window of output (oh, ow) and its divisor (backend/cpu/pool.cpp's avg_window).
struct Window {
  int64_t h0, h1, w0, w1, divisor;
};
__device__ inline Window avg_window(const Geo& g, int64_t oh, int64_t ow) {
  int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  int64_t h1 = min(h0 + g.kh, g.H + g.ph), w1 = min(w0 + g.kw, g.W + g.pw);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = max(h0, int64_t(0));
  w0 = max(w0, int64_t(0));
  h1 = min(h1, g.H);
  w1 = min(w1, g.W);
  return {h0, h1, w0, w1, g.include_pad ? padded : (h1 - h0) * (w1 - w0)};
}

template <class T>
__global__ void avg_pool_kernel(Geo g, const T* x, T* y) {
  using C = compute_t<T>;
  ANVIL_GRID_STRIDE(o, g.planes * g.OH * g.OW) {
    const int64_t ow = o % g.OW, oh = (o / g.OW) % g.OH, p = o / (g.OW * g.OH);
    const T* xp = x + p * g.H * g.W;
    const Window win = avg_window(g, oh, ow);
    C s = 0;
    for (int64_t h = win.h0; h < win.h1; ++h)
      for (int64_t w = win.w0; w < win.w1; ++w) s += up(xp[h * g.W + w]);
    const bool empty = win.h0 >= win.h1 || win.w0 >= win.w1;
    y[o] = down<T>(empty ? C(0) : s / C(win.divisor));
  }
}

// The avg backward's geometry in its index type, with the divisions by the plane's width and
// height and by the strides done by `Div`.
template <class Index, class Div>
struct AvgGatherGeometry {
  Index H, W, OH, OW, kh, kw, sh, sw, ph, pw;
  bool include_pad;
  Div by_W, by_H, by_sh, by_sw;
};

// The divisor's extent along one dim of the window starting at `start` in padded coordinates
// (backend/cpu/pool.cpp's avg_window): clipped to the padded input, or to the input.
template <class Index>
__device__ inline Index avg_extent(Index start, Index k, Index in, Index pad, bool include_pad) {
  const Index end = min(start + k, in + 2 * pad);
  return include_pad ? end - start : min(end, in + pad) - max(start, pad);
}

template <class T, class Index, class Div>
__global__ void avg_pool_backward_kernel(AvgGatherGeometry<Index, Div> g, Index total, const T* gy,
                                         T* gx) {
  using C = compute_t<T>;
  const Index stride = Index(gridDim.x) * blockDim.x;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const Index q = g.by_W.div(i), w = i - q * g.W;
    const Index p = g.by_H.div(q), h = q - p * g.H;
    // In padded coordinates: the outputs whose windows [o*s, o*s + k) hold (hp, wp).
    const Index hp = h + g.ph, wp = w + g.pw;
    const Index oh0 = hp < g.kh ? 0 : g.by_sh.div(hp - g.kh) + 1;
    const Index ow0 = wp < g.kw ? 0 : g.by_sw.div(wp - g.kw) + 1;
    const Index oh1 = min(g.by_sh.div(hp) + 1, g.OH);
    const Index ow1 = min(g.by_sw.div(wp) + 1, g.OW);
    const T* gyp = gy + p * g.OH * g.OW;
    C s = 0;
    for (Index oh = oh0; oh < oh1; ++oh) {
      const int64_t dh = avg_extent(oh * g.sh, g.kh, g.H, g.ph, g.include_pad);
      for (Index ow = ow0; ow < ow1; ++ow) {
        const int64_t dw = avg_extent(ow * g.sw, g.kw, g.W, g.pw, g.include_pad);
        s += up(gyp[oh * g.OW + ow]) / C(dh * dw);
      }
    }
    gx[i] = down<T>(s);
  }
}

template <class T, class Index, class Div>
void launch_avg_pool_backward(const PoolArgs& a, Div by_W, Div by_H, Div by_sh, Div by_sw,
                              const Tensor& grad_input, const Tensor& grad_out) {
  const AvgGatherGeometry<Index, Div> g{.H = Index(a.height),
                                        .W = Index(a.width),
                                        .OH = Index(a.out_h),
                                        .OW = Index(a.out_w),
                                        .kh = Index(a.kernel_h),
                                        .kw = Index(a.kernel_w),
                                        .sh = Index(a.stride_h),
                                        .sw = Index(a.stride_w),
                                        .ph = Index(a.pad_h),
                                        .pw = Index(a.pad_w),
                                        .include_pad = a.count_include_pad,
                                        .by_W = by_W,
                                        .by_H = by_H,
                                        .by_sh = by_sh,
                                        .by_sw = by_sw};
  const int64_t total = grad_input.numel();
  avg_pool_backward_kernel<T, Index, Div><<<blocks_for(total), kThreads, 0, current_stream()>>>(
      g, Index(total), static_cast<const T*>(grad_out.data_ptr()),
      static_cast<T*>(grad_input.data_ptr()));
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

// PyTorch's adaptive bins: [floor(i * in / out), ceil((i + 1) * in / out)).
__device__ inline int64_t bin_start(int64_t i, int64_t out, int64_t in) { return (i * in) / out; }
__device__ inline int64_t bin_end(int64_t i, int64_t out, int64_t in) {
  return ((i + 1) * in + out - 1) / out;
}

template <class T>
__global__ void adaptive_avg_pool_kernel(Geo g, const T* x, T* y) {
  using C = compute_t<T>;
  ANVIL_GRID_STRIDE(o, g.planes * g.OH * g.OW) {
    const int64_t ow = o % g.OW, oh = (o / g.OW) % g.OH, p = o / (g.OW * g.OH);
    const T* xp = x + p * g.H * g.W;
    const int64_t h0 = bin_start(oh, g.OH, g.H), h1 = bin_end(oh, g.OH, g.H);
    const int64_t w0 = bin_start(ow, g.OW, g.W), w1 = bin_end(ow, g.OW, g.W);
    C s = 0;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) s += up(xp[h * g.W + w]);
    y[o] = down<T>(s / C((h1 - h0) * (w1 - w0)));
  }
}

template <class T>
__global__ void adaptive_avg_pool_backward_kernel(Geo g, const T* gy, T* gx) {
  using C = compute_t<T>;
  ANVIL_GRID_STRIDE(i, g.planes * g.H * g.W) {
    const int64_t w = i % g.W, h = (i / g.W) % g.H, p = i / (g.W * g.H);
    // Bins holding h: from the one starting at or before h to the last starting at or before h.
    const int64_t oh0 = (h * g.OH) / g.H, oh1 = min(((h + 1) * g.OH + g.H - 1) / g.H, g.OH);
    const int64_t ow0 = (w * g.OW) / g.W, ow1 = min(((w + 1) * g.OW + g.W - 1) / g.W, g.OW);
    const T* gyp = gy + p * g.OH * g.OW;
    C s = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const int64_t h0 = bin_start(oh, g.OH, g.H), h1 = bin_end(oh, g.OH, g.H);
      if (h < h0 || h >= h1) continue;
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const int64_t w0 = bin_start(ow, g.OW, g.W), w1 = bin_end(ow, g.OW, g.W);
        if (w < w0 || w >= w1) continue;
        s += up(gyp[oh * g.OW + ow]) / C((h1 - h0) * (w1 - w0));
      }
    }
    gx[i] = down<T>(s);
  }
}

template <class T> T* ptr(const Tensor& t) { return static_cast<T*>(t.data_ptr()); }

#define ANVIL_POOL_LAUNCH(kernel, n, ...)                                 \
  do {                                                                    \
    if ((n) == 0) return;                                                 \
    kernel<<<blocks_for(n), kThreads, 0, current_stream()>>>(__VA_ARGS__); \
    ANVIL_CUDA_CHECK(cudaGetLastError());                                 \
  } while (0)

void max_pool2d_cuda(const PoolArgs& a, const Tensor& out, const Tensor& indices,
                     const Tensor& input) {
  DeviceGuard guard(input.device().index);
  ANVIL_DISPATCH_NUMERIC(input.dtype(), "max_pool2d", [&] {
    using T = dev_t<scalar_t>;
    ANVIL_POOL_LAUNCH(max_pool_kernel<T>, out.numel(), geo_of(a), ptr<const T>(input),
                      ptr<T>(out), ptr<int64_t>(indices));
  });
}
void max_pool2d_backward_cuda(const PoolArgs& a, const Tensor& grad_input,
                              const Tensor& grad_out, const Tensor& indices) {
  if (grad_input.numel() == 0) return;
  DeviceGuard guard(grad_input.device().index);
  // 32-bit index arithmetic with multiply-shift division when every index fits.
  const int64_t limit = int64_t(1) << 31;
  const bool narrow = grad_input.numel() < limit && grad_out.numel() < limit &&
                      a.height + a.pad_h < limit && a.width + a.pad_w < limit &&
                      a.stride_h < limit && a.stride_w < limit;
  ANVIL_DISPATCH_FLOAT(grad_out.dtype(), "max_pool2d_backward", [&] {
    using T = dev_t<scalar_t>;
    if (narrow)
      launch_max_pool_backward<T, uint32_t>(
          a, IntDivider(uint32_t(a.width)), IntDivider(uint32_t(a.height)),
          IntDivider(uint32_t(a.stride_h)), IntDivider(uint32_t(a.stride_w)), grad_input,
          grad_out, indices);
    else
      launch_max_pool_backward<T, int64_t>(a, PlainDivider{a.width}, PlainDivider{a.height},
                                           PlainDivider{a.stride_h}, PlainDivider{a.stride_w},
                                           grad_input, grad_out, indices);
  });
}
void avg_pool2d_cuda(const PoolArgs& a, const Tensor& out, const Tensor& input) {
  DeviceGuard guard(input.device().index);
  if (avg_pool2d_cudnn(a, out, input)) return;
  ANVIL_DISPATCH_FLOAT(input.dtype(), "avg_pool2d", [&] {
    using T = dev_t<scalar_t>;
    ANVIL_POOL_LAUNCH(avg_pool_kernel<T>, out.numel(), geo_of(a), ptr<const T>(input),
                      ptr<T>(out));
  });
}
void avg_pool2d_backward_cuda(const PoolArgs& a, const Tensor& grad_input, const Tensor& grad_out) {
  if (grad_input.numel() == 0) return;
  DeviceGuard guard(grad_input.device().index);
  // 32-bit index arithmetic with multiply-shift division when every index fits: the padded
  // coordinates run below H + pad (the last window starts inside the input or its left
  // padding) and a window's end below H + pad + kernel.
  const int64_t limit = int64_t(1) << 31;
  const bool narrow = grad_input.numel() < limit && grad_out.numel() < limit &&
                      a.height + a.pad_h + a.kernel_h < limit &&
                      a.width + a.pad_w + a.kernel_w < limit && a.height + 2 * a.pad_h < limit &&
                      a.width + 2 * a.pad_w < limit && a.stride_h < limit && a.stride_w < limit;
  ANVIL_DISPATCH_FLOAT(grad_out.dtype(), "avg_pool2d_backward", [&] {
    using T = dev_t<scalar_t>;
    if (narrow)
      launch_avg_pool_backward<T, uint32_t>(
          a, IntDivider(uint32_t(a.width)), IntDivider(uint32_t(a.height)),
          IntDivider(uint32_t(a.stride_h)), IntDivider(uint32_t(a.stride_w)), grad_input, grad_out);
    else
      launch_avg_pool_backward<T, int64_t>(a, PlainDivider{a.width}, PlainDivider{a.height},
                                           PlainDivider{a.stride_h}, PlainDivider{a.stride_w},
                                           grad_input, grad_out);
  });
}
void adaptive_avg_pool2d_cuda(const PoolArgs& a, const Tensor& out, const Tensor& input) {
  DeviceGuard guard(input.device().index);
  ANVIL_DISPATCH_FLOAT(input.dtype(), "adaptive_avg_pool2d", [&] {
    using T = dev_t<scalar_t>;
    ANVIL_POOL_LAUNCH(adaptive_avg_pool_kernel<T>, out.numel(), geo_of(a), ptr<const T>(input),
                      ptr<T>(out));
  });
}
void adaptive_avg_pool2d_backward_cuda(const PoolArgs& a, const Tensor& grad_input,
                                       const Tensor& grad_out) {
  DeviceGuard guard(grad_input.device().index);
  ANVIL_DISPATCH_FLOAT(grad_out.dtype(), "adaptive_avg_pool2d_backward", [&] {
    using T = dev_t<scalar_t>;
    ANVIL_POOL_LAUNCH(adaptive_avg_pool_backward_kernel<T>, grad_input.numel(), geo_of(a),
                      ptr<const T>(grad_out), ptr<T>(grad_input));
  });
}

ANVIL_REGISTER_KERNEL(backend::max_pool2d_kernels, CUDA, &max_pool2d_cuda);
ANVIL_REGISTER_KERNEL(backend::max_pool2d_backward_kernels, CUDA, &max_pool2d_backward_cuda);
ANVIL_REGISTER_KERNEL(backend::avg_pool2d_kernels, CUDA, &avg_pool2d_cuda);
ANVIL_REGISTER_KERNEL(backend::avg_pool2d_backward_kernels, CUDA, &avg_pool2d_backward_cuda);
ANVIL_REGISTER_KERNEL(backend::adaptive_avg_pool2d_kernels, CUDA, &adaptive_avg_pool2d_cuda);
ANVIL_REGISTER_KERNEL(backend::adaptive_avg_pool2d_backward_kernels, CUDA,
                      &adaptive_avg_pool2d_backward_cuda);

}  // namespace
}  // namespace anvil::cuda
