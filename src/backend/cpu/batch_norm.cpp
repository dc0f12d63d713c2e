// CPU batch normalisation, forward and backward, one channel per work item. Sums accumulate
// in double.
#include <cmath>
#include <limits>

#include "backend/cpu/loops.h"
#include "backend/norm_kernels.h"

namespace anvil::cpu {
namespace {
using backend::BatchNormArgs;

template <class T>
void forward(const BatchNormArgs& a, const Tensor& out, const Tensor& save_mean,
             const Tensor& save_invstd, const Tensor& batch_var, const Tensor& input,
             const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
             const Tensor& running_var) {
  using S = compute_t<T>;  // statistics and parameters
  const T* x = input.data<T>();
  T* y = out.data<T>();
  const S* w = weight.defined() ? weight.data<S>() : nullptr;
  const S* b = bias.defined() ? bias.data<S>() : nullptr;
  const S* rm = a.training ? nullptr : running_mean.data<S>();
  const S* rv = a.training ? nullptr : running_var.data<S>();
  S* mean_out = save_mean.data<S>();
  S* invstd_out = save_invstd.data<S>();
  S* bvar = batch_var.defined() ? batch_var.data<S>() : nullptr;
  const int64_t N = a.batch, C = a.channels, HW = a.spatial, M = N * HW;
  parallel_for(C, 2 * M, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      double mean, var;
      if (a.training) {
        double s = 0;
        for (int64_t n = 0; n < N; ++n)
          for (int64_t i = 0; i < HW; ++i) s += double(S(x[(n * C + c) * HW + i]));
        mean = s / double(M);
        double ss = 0;
        for (int64_t n = 0; n < N; ++n)
          for (int64_t i = 0; i < HW; ++i) {
            double d = double(S(x[(n * C + c) * HW + i])) - mean;
            ss += d * d;
          }
        var = ss / double(M);
        if (bvar)
          bvar[c] = M > 1 ? S(ss / double(M - 1)) : std::numeric_limits<S>::quiet_NaN();
      } else {
        mean = double(rm[c]);
        var = double(rv[c]);
      }
      double invstd = 1.0 / std::sqrt(var + a.eps);
      mean_out[c] = S(mean);
      invstd_out[c] = S(invstd);
      // y = x * scale + shift with scale = w * invstd, shift = b - mean * scale
      double scale = (w ? double(w[c]) : 1.0) * invstd;
      double shift = (b ? double(b[c]) : 0.0) - mean * scale;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) {
          int64_t k = (n * C + c) * HW + i;
          y[k] = T(S(double(S(x[k])) * scale + shift));
        }
    }
  });
}

template <class T>
void backward(const BatchNormArgs& a, const Tensor& grad_input, const Tensor& grad_weight,
              const Tensor& grad_bias, const Tensor& grad_out, const Tensor& input,
              const Tensor& weight, const Tensor& save_mean, const Tensor& save_invstd) {
  using S = compute_t<T>;
  const T* x = input.data<T>();
  const T* dy = grad_out.data<T>();
  const S* w = weight.defined() ? weight.data<S>() : nullptr;
  const S* mean_in = save_mean.data<S>();
  const S* invstd_in = save_invstd.data<S>();
  T* dx = grad_input.defined() ? grad_input.data<T>() : nullptr;
  S* dw = grad_weight.defined() ? grad_weight.data<S>() : nullptr;
  S* db = grad_bias.defined() ? grad_bias.data<S>() : nullptr;
  const int64_t N = a.batch, C = a.channels, HW = a.spatial, M = N * HW;
  parallel_for(C, 2 * M, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const double mean = double(mean_in[c]), invstd = double(invstd_in[c]);
      double sum_dy = 0, sum_dy_xhat = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) {
          int64_t k = (n * C + c) * HW + i;
          double g = double(S(dy[k]));
          sum_dy += g;
          sum_dy_xhat += g * (double(S(x[k])) - mean) * invstd;
        }
      if (dw) dw[c] = S(sum_dy_xhat);
      if (db) db[c] = S(sum_dy);
      if (!dx) continue;
      const double scale = (w ? double(w[c]) : 1.0) * invstd;
      const double mean_dy = sum_dy / double(M), mean_dy_xhat = sum_dy_xhat / double(M);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) {
          int64_t k = (n * C + c) * HW + i;
          double g = double(S(dy[k]));
          if (a.training) {
            double xhat = (double(S(x[k])) - mean) * invstd;
            g = g - mean_dy - xhat * mean_dy_xhat;
          }
          dx[k] = T(S(g * scale));
        }
    }
  });
}

void batch_norm_cpu(const BatchNormArgs& a, const Tensor& out, const Tensor& save_mean,
                    const Tensor& save_invstd, const Tensor& batch_var, const Tensor& input,
                    const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                    const Tensor& running_var) {
  ANVIL_DISPATCH_FLOAT(input.dtype(), "batch_norm", [&] {
    forward<scalar_t>(a, out, save_mean, save_invstd, batch_var, input, weight, bias,
                      running_mean, running_var);
  });
}
void batch_norm_backward_cpu(const BatchNormArgs& a, const Tensor& grad_input,
                             const Tensor& grad_weight, const Tensor& grad_bias,
                             const Tensor& grad_out, const Tensor& input, const Tensor& weight,
                             const Tensor& save_mean, const Tensor& save_invstd) {
  ANVIL_DISPATCH_FLOAT(input.dtype(), "batch_norm_backward", [&] {
    backward<scalar_t>(a, grad_input, grad_weight, grad_bias, grad_out, input, weight, save_mean,
                       save_invstd);
  });
}

ANVIL_REGISTER_KERNEL(backend::batch_norm_kernels, CPU, &batch_norm_cpu);
ANVIL_REGISTER_KERNEL(backend::batch_norm_backward_kernels, CPU, &batch_norm_backward_cpu);

}  // namespace
}  // namespace anvil::cpu
