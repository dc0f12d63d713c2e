// CPU layer norm and RMS norm, forward and backward: rows across threads, sums in double. The
// parameter gradients are partial sums over chunks of rows, added in chunk order; the chunks
// follow from the shape alone, so the result is the same whatever the number of threads.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/loops.h"
#include "backend/layer_norm_kernels.h"

namespace anvil::cpu {
namespace {
using backend::NormArgs;

template <class P> P* opt(const Tensor& t) {
  return t.defined() ? static_cast<P*>(t.data_ptr()) : nullptr;
}

// Chunks of rows for the parameter-gradient partial sums: at most kMaxChunks, and at most
// kMaxPartials doubles of partial sums in all.
constexpr int64_t kMaxChunks = 64;
constexpr int64_t kMaxPartials = int64_t(1) << 22;

template <class T, bool kRms>
void forward(const NormArgs& a, const Tensor& out, const Tensor& mean, const Tensor& rstd,
             const Tensor& input, const Tensor& weight, const Tensor& bias) {
  using S = compute_t<T>;
  const T* x = input.data<T>();
  T* y = out.data<T>();
  const S* w = opt<const S>(weight);
  const S* b = opt<const S>(bias);
  S* mean_out = kRms ? nullptr : mean.data<S>();
  S* rstd_out = rstd.data<S>();
  const int64_t N = a.cols;
  parallel_for(a.rows, 3 * N, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * N;
      T* yr = y + r * N;
      double m = 0;  // the mean (none for RMS norm)
      if constexpr (!kRms) {
        double s = 0;
        for (int64_t j = 0; j < N; ++j) s += double(S(xr[j]));
        m = s / double(N);
        mean_out[r] = S(m);
      }
      double ss = 0;
      for (int64_t j = 0; j < N; ++j) {
        const double d = double(S(xr[j])) - m;
        ss += d * d;
      }
      const double rs = 1.0 / std::sqrt(ss / double(N) + a.eps);
      rstd_out[r] = S(rs);
      for (int64_t j = 0; j < N; ++j) {
        double v = (double(S(xr[j])) - m) * rs;
        if (w) v *= double(w[j]);
        if (b) v += double(b[j]);
        yr[j] = T(S(v));
      }
    }
  });
}

template <class T, bool kRms>
void backward(const NormArgs& a, const Tensor& grad_input, const Tensor& grad_weight,
              const Tensor& grad_bias, const Tensor& grad_out, const Tensor& input,
              const Tensor& weight, const Tensor& mean, const Tensor& rstd) {
  using S = compute_t<T>;
  const T* x = input.data<T>();
  const T* dy = grad_out.data<T>();
  const S* w = opt<const S>(weight);
  const S* mean_in = kRms ? nullptr : mean.data<S>();
  const S* rstd_in = rstd.data<S>();
  T* dx = opt<T>(grad_input);
  S* dw = opt<S>(grad_weight);
  S* db = opt<S>(grad_bias);
  const int64_t M = a.rows, N = a.cols;
  const bool params = dw || db;

  int64_t chunks = std::min({M, kMaxChunks, std::max<int64_t>(1, kMaxPartials / (2 * N))});
  const int64_t chunk_rows = (M + chunks - 1) / chunks;
  chunks = (M + chunk_rows - 1) / chunk_rows;
  // partials[(chunk * 2 + 0) * N + j]: sum of dy * xhat; [(chunk * 2 + 1) * N + j]: sum of dy
  std::vector<double> partials(params ? size_t(chunks * 2 * N) : 0, 0.0);

  parallel_for(chunks, chunk_rows * N * 4, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      double* pw = params ? partials.data() + k * 2 * N : nullptr;
      double* pb = params ? pw + N : nullptr;
      for (int64_t r = k * chunk_rows; r < std::min(M, (k + 1) * chunk_rows); ++r) {
        const T* xr = x + r * N;
        const T* gr = dy + r * N;
        const double m = kRms ? 0.0 : double(mean_in[r]), rs = double(rstd_in[r]);
        auto xhat = [&](int64_t j) { return (double(S(xr[j])) - m) * rs; };
        auto g = [&](int64_t j) { return double(S(gr[j])) * (w ? double(w[j]) : 1.0); };
        if (dx) {
          double sum_g = 0, sum_gx = 0;
          for (int64_t j = 0; j < N; ++j) {
            const double gj = g(j);
            sum_g += gj;
            sum_gx += gj * xhat(j);
          }
          const double mean_g = kRms ? 0.0 : sum_g / double(N), mean_gx = sum_gx / double(N);
          T* dxr = dx + r * N;
          for (int64_t j = 0; j < N; ++j) dxr[j] = T(S(rs * (g(j) - mean_g - xhat(j) * mean_gx)));
        }
        if (params)
          for (int64_t j = 0; j < N; ++j) {
            const double gj = double(S(gr[j]));
            pw[j] += gj * xhat(j);
            if (db) pb[j] += gj;
          }
      }
    }
  });
  if (!params) return;
  parallel_for(N, 2 * chunks, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      double sw = 0, sb = 0;
      for (int64_t k = 0; k < chunks; ++k) {
        sw += partials[size_t((k * 2) * N + j)];
        sb += partials[size_t((k * 2 + 1) * N + j)];
      }
      if (dw) dw[j] = S(sw);
      if (db) db[j] = S(sb);
    }
  });
}

void layer_norm_cpu(const NormArgs& a, const Tensor& out, const Tensor& mean, const Tensor& rstd,
                    const Tensor& input, const Tensor& weight, const Tensor& bias) {
  ANVIL_DISPATCH_FLOAT(input.dtype(), "layer_norm", [&] {
    forward<scalar_t, false>(a, out, mean, rstd, input, weight, bias);
  });
}

void layer_norm_backward_cpu(const NormArgs& a, const Tensor& grad_input,
                             const Tensor& grad_weight, const Tensor& grad_bias,
                             const Tensor& grad_out, const Tensor& input, const Tensor& weight,
                             const Tensor& mean, const Tensor& rstd) {
  ANVIL_DISPATCH_FLOAT(input.dtype(), "layer_norm_backward", [&] {
    backward<scalar_t, false>(a, grad_input, grad_weight, grad_bias, grad_out, input, weight,
                              mean, rstd);
  });
}

void rms_norm_cpu(const NormArgs& a, const Tensor& out, const Tensor& rstd, const Tensor& input,
                  const Tensor& weight) {
  ANVIL_DISPATCH_FLOAT(input.dtype(), "rms_norm", [&] {
    forward<scalar_t, true>(a, out, Tensor(), rstd, input, weight, Tensor());
  });
}

void rms_norm_backward_cpu(const NormArgs& a, const Tensor& grad_input, const Tensor& grad_weight,
                           const Tensor& grad_out, const Tensor& input, const Tensor& weight,
                           const Tensor& rstd) {
  ANVIL_DISPATCH_FLOAT(input.dtype(), "rms_norm_backward", [&] {
    backward<scalar_t, true>(a, grad_input, grad_weight, Tensor(), grad_out, input, weight,
                             Tensor(), rstd);
  });
}

ANVIL_REGISTER_KERNEL(backend::layer_norm_kernels, CPU, &layer_norm_cpu);
ANVIL_REGISTER_KERNEL(backend::layer_norm_backward_kernels, CPU, &layer_norm_backward_cpu);
ANVIL_REGISTER_KERNEL(backend::rms_norm_kernels, CPU, &rms_norm_cpu);
ANVIL_REGISTER_KERNEL(backend::rms_norm_backward_kernels, CPU, &rms_norm_backward_cpu);

}  // namespace
}  // namespace anvil::cpu
