// CPU 2-D pooling, forward and backward, one plane (an image channel) per work item. Windows
// follow PyTorch's CPU kernels exactly, so the argmax and the divisors agree with torch.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/loops.h"
#include "backend/pool_kernels.h"

namespace anvil::cpu {
namespace {
using backend::PoolArgs;

template <class T>
void max_pool(const PoolArgs& a, const Tensor& out, const Tensor& indices, const Tensor& input) {
  using C = compute_t<T>;
  const T* x = input.data<T>();
  T* y = out.data<T>();
  int64_t* idx = indices.data<int64_t>();
  const int64_t plane = a.height * a.width, oplane = a.out_h * a.out_w;
  parallel_for(a.planes, oplane * a.kernel_h * a.kernel_w, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const T* xp = x + p * plane;
      for (int64_t oh = 0; oh < a.out_h; ++oh)
        for (int64_t ow = 0; ow < a.out_w; ++ow) {
          int64_t h0 = oh * a.stride_h - a.pad_h, w0 = ow * a.stride_w - a.pad_w;
          int64_t h1 = std::min(h0 + (a.kernel_h - 1) * a.dilation_h + 1, a.height);
          int64_t w1 = std::min(w0 + (a.kernel_w - 1) * a.dilation_w + 1, a.width);
          while (h0 < 0) h0 += a.dilation_h;
          while (w0 < 0) w0 += a.dilation_w;
          C best;
          if constexpr (std::is_floating_point_v<C>) {
            best = -std::numeric_limits<C>::infinity();
          } else {
            best = std::numeric_limits<C>::lowest();
          }
          // An empty window (possible only at odd paddings) keeps index -1: no gradient.
          int64_t best_i = h0 < h1 && w0 < w1 ? h0 * a.width + w0 : -1;
          for (int64_t h = h0; h < h1; h += a.dilation_h)
            for (int64_t w = w0; w < w1; w += a.dilation_w) {
              C v = C(xp[h * a.width + w]);
              if (v > best || v != v) {  // NaN propagates, as in torch
                best = v;
                best_i = h * a.width + w;
              }
            }
          y[p * oplane + oh * a.out_w + ow] = T(best);
          idx[p * oplane + oh * a.out_w + ow] = best_i;
        }
    }
  });
}

template <class T>
void max_pool_backward(const PoolArgs& a, const Tensor& grad_input, const Tensor& grad_out,
                       const Tensor& indices) {
  using C = compute_t<T>;
  const T* gy = grad_out.data<T>();
  T* gx = grad_input.data<T>();
  const int64_t* idx = indices.data<int64_t>();
  const int64_t plane = a.height * a.width, oplane = a.out_h * a.out_w;
  parallel_for(a.planes, plane + oplane, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      T* gxp = gx + p * plane;
      for (int64_t i = 0; i < plane; ++i) gxp[i] = T(0);
      for (int64_t o = 0; o < oplane; ++o) {
        int64_t i = idx[p * oplane + o];
        if (i >= 0 && i < plane) gxp[i] = T(C(gxp[i]) + C(gy[p * oplane + o]));
      }
    }
  });
}

// The clipped window of output (oh, ow) and its divisor, as torch's avg_pool2d computes them.
struct AvgWindow {
  int64_t h0, h1, w0, w1, divisor;
};
AvgWindow avg_window(const PoolArgs& a, int64_t oh, int64_t ow) {
  int64_t h0 = oh * a.stride_h - a.pad_h, w0 = ow * a.stride_w - a.pad_w;
  int64_t h1 = std::min(h0 + a.kernel_h, a.height + a.pad_h);
  int64_t w1 = std::min(w0 + a.kernel_w, a.width + a.pad_w);
  int64_t padded = (h1 - h0) * (w1 - w0);  // the window clipped to the padded input
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, a.height);
  w1 = std::min(w1, a.width);
  int64_t divisor = a.count_include_pad ? padded : (h1 - h0) * (w1 - w0);
  return {h0, h1, w0, w1, divisor};
}

template <class T>
void avg_pool(const PoolArgs& a, const Tensor& out, const Tensor& input) {
  using C = compute_t<T>;
  const T* x = input.data<T>();
  T* y = out.data<T>();
  const int64_t plane = a.height * a.width, oplane = a.out_h * a.out_w;
  parallel_for(a.planes, oplane * a.kernel_h * a.kernel_w, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const T* xp = x + p * plane;
      for (int64_t oh = 0; oh < a.out_h; ++oh)
        for (int64_t ow = 0; ow < a.out_w; ++ow) {
          AvgWindow win = avg_window(a, oh, ow);
          C s = 0;
          for (int64_t h = win.h0; h < win.h1; ++h)
            for (int64_t w = win.w0; w < win.w1; ++w) s += C(xp[h * a.width + w]);
          bool empty = win.h0 >= win.h1 || win.w0 >= win.w1;
          y[p * oplane + oh * a.out_w + ow] = T(empty ? C(0) : s / C(win.divisor));
        }
    }
  });
}

template <class T>
void avg_pool_backward(const PoolArgs& a, const Tensor& grad_input, const Tensor& grad_out) {
  using C = compute_t<T>;
  const T* gy = grad_out.data<T>();
  T* gx = grad_input.data<T>();
  const int64_t plane = a.height * a.width, oplane = a.out_h * a.out_w;
  parallel_for(a.planes, plane + oplane * a.kernel_h * a.kernel_w, [&](int64_t begin, int64_t end) {
    std::vector<C> acc(static_cast<size_t>(plane));
    for (int64_t p = begin; p < end; ++p) {
      std::fill(acc.begin(), acc.end(), C(0));
      for (int64_t oh = 0; oh < a.out_h; ++oh)
        for (int64_t ow = 0; ow < a.out_w; ++ow) {
          AvgWindow win = avg_window(a, oh, ow);
          if (win.h0 >= win.h1 || win.w0 >= win.w1) continue;
          C g = C(gy[p * oplane + oh * a.out_w + ow]) / C(win.divisor);
          for (int64_t h = win.h0; h < win.h1; ++h)
            for (int64_t w = win.w0; w < win.w1; ++w) acc[size_t(h * a.width + w)] += g;
        }
      for (int64_t i = 0; i < plane; ++i) gx[p * plane + i] = T(acc[size_t(i)]);
    }
  });
}

// PyTorch's adaptive bins: [floor(i * in / out), ceil((i + 1) * in / out)).
int64_t bin_start(int64_t i, int64_t out, int64_t in) { return (i * in) / out; }
int64_t bin_end(int64_t i, int64_t out, int64_t in) { return ((i + 1) * in + out - 1) / out; }

template <class T>
void adaptive_avg_pool(const PoolArgs& a, const Tensor& out, const Tensor& input) {
  using C = compute_t<T>;
  const T* x = input.data<T>();
  T* y = out.data<T>();
  const int64_t plane = a.height * a.width, oplane = a.out_h * a.out_w;
  parallel_for(a.planes, plane + oplane, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const T* xp = x + p * plane;
      for (int64_t oh = 0; oh < a.out_h; ++oh) {
        int64_t h0 = bin_start(oh, a.out_h, a.height), h1 = bin_end(oh, a.out_h, a.height);
        for (int64_t ow = 0; ow < a.out_w; ++ow) {
          int64_t w0 = bin_start(ow, a.out_w, a.width), w1 = bin_end(ow, a.out_w, a.width);
          C s = 0;
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) s += C(xp[h * a.width + w]);
          y[p * oplane + oh * a.out_w + ow] = T(s / C((h1 - h0) * (w1 - w0)));
        }
      }
    }
  });
}

template <class T>
void adaptive_avg_pool_backward(const PoolArgs& a, const Tensor& grad_input,
                                const Tensor& grad_out) {
  using C = compute_t<T>;
  const T* gy = grad_out.data<T>();
  T* gx = grad_input.data<T>();
  const int64_t plane = a.height * a.width, oplane = a.out_h * a.out_w;
  parallel_for(a.planes, plane + oplane, [&](int64_t begin, int64_t end) {
    std::vector<C> acc(static_cast<size_t>(plane));
    for (int64_t p = begin; p < end; ++p) {
      std::fill(acc.begin(), acc.end(), C(0));
      for (int64_t oh = 0; oh < a.out_h; ++oh) {
        int64_t h0 = bin_start(oh, a.out_h, a.height), h1 = bin_end(oh, a.out_h, a.height);
        for (int64_t ow = 0; ow < a.out_w; ++ow) {
          int64_t w0 = bin_start(ow, a.out_w, a.width), w1 = bin_end(ow, a.out_w, a.width);
          C g = C(gy[p * oplane + oh * a.out_w + ow]) / C((h1 - h0) * (w1 - w0));
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) acc[size_t(h * a.width + w)] += g;
        }
      }
      for (int64_t i = 0; i < plane; ++i) gx[p * plane + i] = T(acc[size_t(i)]);
    }
  });
}

void max_pool2d_cpu(const PoolArgs& a, const Tensor& out, const Tensor& indices,
                    const Tensor& input) {
  ANVIL_DISPATCH_NUMERIC(input.dtype(), "max_pool2d",
                         [&] { max_pool<scalar_t>(a, out, indices, input); });
}
void max_pool2d_backward_cpu(const PoolArgs& a, const Tensor& grad_input, const Tensor& grad_out,
                             const Tensor& indices) {
  ANVIL_DISPATCH_FLOAT(grad_out.dtype(), "max_pool2d_backward",
                       [&] { max_pool_backward<scalar_t>(a, grad_input, grad_out, indices); });
}
void avg_pool2d_cpu(const PoolArgs& a, const Tensor& out, const Tensor& input) {
  ANVIL_DISPATCH_FLOAT(input.dtype(), "avg_pool2d", [&] { avg_pool<scalar_t>(a, out, input); });
}
void avg_pool2d_backward_cpu(const PoolArgs& a, const Tensor& grad_input, const Tensor& grad_out) {
  ANVIL_DISPATCH_FLOAT(grad_out.dtype(), "avg_pool2d_backward",
                       [&] { avg_pool_backward<scalar_t>(a, grad_input, grad_out); });
}
void adaptive_avg_pool2d_cpu(const PoolArgs& a, const Tensor& out, const Tensor& input) {
  ANVIL_DISPATCH_FLOAT(input.dtype(), "adaptive_avg_pool2d",
                       [&] { adaptive_avg_pool<scalar_t>(a, out, input); });
}
void adaptive_avg_pool2d_backward_cpu(const PoolArgs& a, const Tensor& grad_input,
                                      const Tensor& grad_out) {
  ANVIL_DISPATCH_FLOAT(grad_out.dtype(), "adaptive_avg_pool2d_backward",
                       [&] { adaptive_avg_pool_backward<scalar_t>(a, grad_input, grad_out); });
}

ANVIL_REGISTER_KERNEL(backend::max_pool2d_kernels, CPU, &max_pool2d_cpu);
ANVIL_REGISTER_KERNEL(backend::max_pool2d_backward_kernels, CPU, &max_pool2d_backward_cpu);
ANVIL_REGISTER_KERNEL(backend::avg_pool2d_kernels, CPU, &avg_pool2d_cpu);
ANVIL_REGISTER_KERNEL(backend::avg_pool2d_backward_kernels, CPU, &avg_pool2d_backward_cpu);
ANVIL_REGISTER_KERNEL(backend::adaptive_avg_pool2d_kernels, CPU, &adaptive_avg_pool2d_cpu);
ANVIL_REGISTER_KERNEL(backend::adaptive_avg_pool2d_backward_kernels, CPU,
                      &adaptive_avg_pool2d_backward_cpu);

}  // namespace
}  // namespace anvil::cpu
