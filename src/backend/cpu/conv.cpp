// CPU 2-D convolution: im2col per image and group, then an OpenBLAS gemm; col2im for the
// input gradient. Images are split across OpenMP threads, each with its own column buffer;
// the weight gradient is summed per thread and the partial sums added at the end. The 16-bit
// floats compute in float32.
#include <algorithm>
#include <vector>

#include "backend/conv_kernels.h"
#include "backend/cpu/blas.h"
#include "backend/cpu/loops.h"

namespace anvil::cpu {
namespace {
using backend::ConvArgs;

// Per-image, per-group geometry.
struct Geometry {
  int64_t cg, kg;   // channels per group in and out
  int64_t rows;     // cg * kh * kw: rows of the column matrix
  int64_t cols;     // OH * OW
  int64_t plane;    // H * W
};

Geometry geometry(const ConvArgs& a) {
  Geometry g;
  g.cg = a.in_channels / a.groups;
  g.kg = a.out_channels / a.groups;
  g.rows = g.cg * a.kernel_h * a.kernel_w;
  g.cols = a.out_h * a.out_w;
  g.plane = a.height * a.width;
  return g;
}

// col[r, l] = x[c, oh*s - p + ki*d, ow*s - p + kj*d] (0 outside) with r = (c, ki, kj), l = (oh, ow);
// x holds `channels` planes of the image.
template <class T, class C>
void im2col(const ConvArgs& a, const T* x, int64_t channels, C* col) {
  const int64_t L = a.out_h * a.out_w;
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t ki = 0; ki < a.kernel_h; ++ki)
      for (int64_t kj = 0; kj < a.kernel_w; ++kj) {
        C* row = col + ((c * a.kernel_h + ki) * a.kernel_w + kj) * L;
        const T* xc = x + c * a.height * a.width;
        for (int64_t oh = 0; oh < a.out_h; ++oh) {
          int64_t ih = oh * a.stride_h - a.pad_h + ki * a.dilation_h;
          C* r = row + oh * a.out_w;
          if (ih < 0 || ih >= a.height) {
            std::fill(r, r + a.out_w, C(0));
            continue;
          }
          for (int64_t ow = 0; ow < a.out_w; ++ow) {
            int64_t iw = ow * a.stride_w - a.pad_w + kj * a.dilation_w;
            r[ow] = iw < 0 || iw >= a.width ? C(0) : C(xc[ih * a.width + iw]);
          }
        }
      }
}

// The adjoint of im2col: x[c, ih, iw] += col[r, l] over every (r, l) that read it.
template <class C>
void col2im(const ConvArgs& a, const C* col, int64_t channels, C* x) {
  const int64_t L = a.out_h * a.out_w;
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t ki = 0; ki < a.kernel_h; ++ki)
      for (int64_t kj = 0; kj < a.kernel_w; ++kj) {
        const C* row = col + ((c * a.kernel_h + ki) * a.kernel_w + kj) * L;
        C* xc = x + c * a.height * a.width;
        for (int64_t oh = 0; oh < a.out_h; ++oh) {
          int64_t ih = oh * a.stride_h - a.pad_h + ki * a.dilation_h;
          if (ih < 0 || ih >= a.height) continue;
          for (int64_t ow = 0; ow < a.out_w; ++ow) {
            int64_t iw = ow * a.stride_w - a.pad_w + kj * a.dilation_w;
            if (iw >= 0 && iw < a.width) xc[ih * a.width + iw] += row[oh * a.out_w + ow];
          }
        }
      }
}

// `p` as an array of the compute type: itself for float/double, a widened copy otherwise.
template <class T, class C = compute_t<T>>
const C* widen(const T* p, int64_t n, std::vector<C>& store) {
  if constexpr (std::is_same_v<T, C>) {
    return p;
  } else {
    store.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) store[size_t(i)] = C(p[i]);
    return store.data();
  }
}

template <class T>
void forward(const ConvArgs& a, const Tensor& out, const Tensor& input, const Tensor& weight,
             const Tensor& bias) {
  using C = compute_t<T>;
  const Geometry g = geometry(a);
  std::vector<C> wstore, bstore;
  const C* w = widen(weight.data<T>(), weight.numel(), wstore);
  const C* b = bias.defined() ? widen(bias.data<T>(), bias.numel(), bstore) : nullptr;
  const T* x = input.data<T>();
  T* y = out.data<T>();
  const int64_t cost = 2 * a.out_channels * g.rows * g.cols + a.in_channels * g.plane;
  parallel_for(a.batch, cost, [&](int64_t begin, int64_t end) {
    std::vector<C> col(size_t(g.rows * g.cols));
    std::vector<C> res(std::is_same_v<T, C> ? 0 : size_t(g.kg * g.cols));
    for (int64_t n = begin; n < end; ++n) {
      for (int64_t grp = 0; grp < a.groups; ++grp) {
        im2col(a, x + (n * a.in_channels + grp * g.cg) * g.plane, g.cg, col.data());
        T* yg = y + (n * a.out_channels + grp * g.kg) * g.cols;
        C* dst;
        if constexpr (std::is_same_v<T, C>) dst = yg; else dst = res.data();
        gemm(false, false, g.kg, g.cols, g.rows, C(1), w + grp * g.kg * g.rows, g.rows,
             col.data(), g.cols, C(0), dst, g.cols);
        for (int64_t k = 0; k < g.kg; ++k) {
          C bk = b ? b[grp * g.kg + k] : C(0);
          for (int64_t l = 0; l < g.cols; ++l) {
            const T v = T(dst[k * g.cols + l] + bk);
            // ReLU on the rounded value, as the relu op would see it; NaN stays NaN.
            const C r = C(v);
            yg[k * g.cols + l] = a.relu && !(r > C(0) || r != r) ? T(0) : v;
          }
        }
      }
    }
  });
}

template <class T>
void backward_input(const ConvArgs& a, const Tensor& grad_input, const Tensor& grad_out,
                    const Tensor& weight) {
  using C = compute_t<T>;
  const Geometry g = geometry(a);
  std::vector<C> wstore;
  const C* w = widen(weight.data<T>(), weight.numel(), wstore);
  const T* gy = grad_out.data<T>();
  T* gx = grad_input.data<T>();
  const int64_t cost = 2 * a.out_channels * g.rows * g.cols + a.in_channels * g.plane;
  parallel_for(a.batch, cost, [&](int64_t begin, int64_t end) {
    std::vector<C> col(size_t(g.rows * g.cols)), img(size_t(g.cg * g.plane)), gstore;
    for (int64_t n = begin; n < end; ++n) {
      for (int64_t grp = 0; grp < a.groups; ++grp) {
        const C* gyg =
            widen(gy + (n * a.out_channels + grp * g.kg) * g.cols, g.kg * g.cols, gstore);
        // col = W_g^T [rows, kg] @ grad_out_g [kg, cols]
        gemm(true, false, g.rows, g.cols, g.kg, C(1), w + grp * g.kg * g.rows, g.rows, gyg,
             g.cols, C(0), col.data(), g.cols);
        std::fill(img.begin(), img.end(), C(0));
        col2im(a, col.data(), g.cg, img.data());
        T* gxg = gx + (n * a.in_channels + grp * g.cg) * g.plane;
        for (int64_t i = 0; i < g.cg * g.plane; ++i) gxg[i] = T(img[size_t(i)]);
      }
    }
  });
}

template <class T>
void backward_weight(const ConvArgs& a, const Tensor& grad_weight, const Tensor& grad_bias,
                     const Tensor& grad_out, const Tensor& input) {
  using C = compute_t<T>;
  const Geometry g = geometry(a);
  const T* x = input.data<T>();
  const T* gy = grad_out.data<T>();
  const int64_t wn = grad_weight.numel();
  std::vector<C> gw(size_t(wn), C(0)), gb(size_t(a.out_channels), C(0));
  const int64_t cost = 2 * a.out_channels * g.rows * g.cols + a.in_channels * g.plane;
  parallel_for(a.batch, cost, [&](int64_t begin, int64_t end) {
    std::vector<C> col(size_t(g.rows * g.cols)), gstore;
    std::vector<C> part(size_t(wn), C(0)), part_b(size_t(a.out_channels), C(0));
    for (int64_t n = begin; n < end; ++n) {
      for (int64_t grp = 0; grp < a.groups; ++grp) {
        im2col(a, x + (n * a.in_channels + grp * g.cg) * g.plane, g.cg, col.data());
        const C* gyg =
            widen(gy + (n * a.out_channels + grp * g.kg) * g.cols, g.kg * g.cols, gstore);
        // dW_g [kg, rows] += grad_out_g [kg, cols] @ col^T [cols, rows]
        gemm(false, true, g.kg, g.rows, g.cols, C(1), gyg, g.cols, col.data(), g.cols, C(1),
             part.data() + grp * g.kg * g.rows, g.rows);
        for (int64_t k = 0; k < g.kg; ++k) {
          C s = 0;
          for (int64_t l = 0; l < g.cols; ++l) s += gyg[k * g.cols + l];
          part_b[size_t(grp * g.kg + k)] += s;
        }
      }
    }
#pragma omp critical(anvil_conv_weight_grad)
    {
      for (int64_t i = 0; i < wn; ++i) gw[size_t(i)] += part[size_t(i)];
      for (int64_t k = 0; k < a.out_channels; ++k) gb[size_t(k)] += part_b[size_t(k)];
    }
  });
  T* dw = grad_weight.data<T>();
  for (int64_t i = 0; i < wn; ++i) dw[i] = T(gw[size_t(i)]);
  if (grad_bias.defined()) {
    T* db = grad_bias.data<T>();
    for (int64_t k = 0; k < a.out_channels; ++k) db[k] = T(gb[size_t(k)]);
  }
}

void conv2d_cpu(const ConvArgs& a, const Tensor& out, const Tensor& input, const Tensor& weight,
                const Tensor& bias) {
  ANVIL_DISPATCH_FLOAT(input.dtype(), "conv2d", [&] { forward<scalar_t>(a, out, input, weight, bias); });
}
void conv2d_backward_input_cpu(const ConvArgs& a, const Tensor& grad_input,
                               const Tensor& grad_out, const Tensor& weight) {
  ANVIL_DISPATCH_FLOAT(grad_out.dtype(), "conv2d_backward_input",
                       [&] { backward_input<scalar_t>(a, grad_input, grad_out, weight); });
}
void conv2d_backward_weight_cpu(const ConvArgs& a, const Tensor& grad_weight,
                                const Tensor& grad_bias, const Tensor& grad_out,
                                const Tensor& input) {
  ANVIL_DISPATCH_FLOAT(grad_out.dtype(), "conv2d_backward_weight", [&] {
    backward_weight<scalar_t>(a, grad_weight, grad_bias, grad_out, input);
  });
}

ANVIL_REGISTER_KERNEL(backend::conv2d_kernels, CPU, &conv2d_cpu);
ANVIL_REGISTER_KERNEL(backend::conv2d_backward_input_kernels, CPU, &conv2d_backward_input_cpu);
ANVIL_REGISTER_KERNEL(backend::conv2d_backward_weight_kernels, CPU, &conv2d_backward_weight_cpu);

}  // namespace
}  // namespace anvil::cpu
