// Our CUDA batch normalisation, for the cases cuDNN does not take (batch_norm_cudnn.cpp says
// which), with the formulas of backend/cpu/batch_norm.cpp. Each direction is one pass of
// per-channel sums split over several blocks per channel (channel_reduce.cuh), a tiny kernel
// that turns a channel's sums into its statistics and the coefficients of the element-wise
// formula, and one element-wise pass that applies them (channel_map.cuh). Sums are in double;
// the element-wise pass computes in the statistics type (float for 16-bit inputs).
#include <cmath>

#include "backend/cuda/batch_norm.h"
#include "backend/cuda/channel_map.cuh"
#include "backend/cuda/channel_reduce.cuh"

namespace anvil::cuda {
namespace {
using backend::BatchNormArgs;

template <class P> P* opt(const Tensor& t) {
  return t.defined() ? static_cast<P*>(t.data_ptr()) : nullptr;
}

// ---- forward ------------------------------------------------------------------------------

// The forward sums: each value minus the first value of its channel, and its square. The
// shift keeps the one-pass variance free of cancellation when the mean is large against the
// spread, as the CPU's two passes are.
template <class T>
struct ShiftedMoments {
  const T* x;
  int64_t S;
  struct At {
    const T* x;
    double shift;
    template <class I> __device__ Sums2 operator()(I off) const {
      const double d = double(up(x[off])) - shift;
      return {d, d * d};
    }
  };
  __device__ At at(int64_t c) const { return {x, double(up(x[c * S]))}; }
};

// Writes a channel's saved statistics and, when `coef` is set, the coefficients of
// y = x * scale + shift (scale in coef[c], shift in coef[C + c]).
template <class St>
struct ForwardStats {
  const St* w;
  const St* b;
  St* save_mean;
  St* save_invstd;
  St* coef;
  int64_t C;
  double eps;
  __device__ void write(int64_t c, double mean, double var) const {
    const double invstd = 1.0 / sqrt(var + eps);
    save_mean[c] = St(mean);
    save_invstd[c] = St(invstd);
    if (!coef) return;
    const double scale = (w ? double(w[c]) : 1.0) * invstd;
    coef[c] = St(scale);
    coef[C + c] = St((b ? double(b[c]) : 0.0) - mean * scale);
  }
};

template <class T, class St>
struct FinishTraining {
  ForwardStats<St> stats;
  const T* x;
  int64_t S, count;  // count = N * S values per channel
  St* batch_var;
  __device__ void operator()(int64_t c, Sums2 sums) const {
    const double M = double(count), shifted_mean = sums.a / M;
    const double shift = count > 0 ? double(up(x[c * S])) : 0.0;
    const double ss = fmax(sums.b - sums.a * shifted_mean, 0.0);  // sum of squared deviations
    stats.write(c, shift + shifted_mean, ss / M);
    if (batch_var) batch_var[c] = count > 1 ? St(ss / (M - 1)) : St(NAN);
  }
};

template <class St>
struct FinishInference {
  ForwardStats<St> stats;
  const St* running_mean;
  const St* running_var;
  __device__ void operator()(int64_t c, double) const {
    stats.write(c, double(running_mean[c]), double(running_var[c]));
  }
};

template <class T, class St>
struct Normalize {
  const St* coef;
  int64_t C;
  template <class I> __device__ T operator()(I c, T x) const {
    return down<T>(St(up(x)) * coef[c] + coef[C + c]);
  }
};

// ---- backward -----------------------------------------------------------------------------

// The backward sums: dy and dy * (x - mean).
template <class T, class St>
struct BackwardMoments {
  const T* x;
  const T* dy;
  const St* mean;
  struct At {
    const T* x;
    const T* dy;
    double mean;
    template <class I> __device__ Sums2 operator()(I off) const {
      const double g = double(up(dy[off]));
      return {g, g * (double(up(x[off])) - mean)};
    }
  };
  __device__ At at(int64_t c) const { return {x, dy, double(mean[c])}; }
};

// Writes grad_weight = sum(dy * xhat) and grad_bias = sum(dy) where asked, and the
// coefficients of dx = scale * dy + k1 * (x - mean) + k0 (coef: scale, k1, mean, k0, [C] each;
// k1 = k0 = 0 in inference, where dx = scale * dy).
template <class St>
struct FinishBackward {
  const St* w;
  const St* mean;
  const St* invstd;
  St* dw;
  St* db;
  St* coef;
  int64_t C, count;
  bool training;
  __device__ void operator()(int64_t c, Sums2 sums) const {
    const double is = double(invstd[c]), sum_dy = sums.a, sum_dy_xhat = sums.b * is;
    if (dw) dw[c] = St(sum_dy_xhat);
    if (db) db[c] = St(sum_dy);
    if (!coef) return;
    const double scale = (w ? double(w[c]) : 1.0) * is, M = double(count);
    coef[c] = St(scale);
    coef[C + c] = training ? St(-scale * is * sum_dy_xhat / M) : St(0);
    coef[2 * C + c] = mean[c];
    coef[3 * C + c] = training ? St(-scale * sum_dy / M) : St(0);
  }
};

template <class T, class St>
struct InputGrad {
  const St* coef;
  int64_t C;
  template <class I> __device__ T operator()(I c, T x, T dy) const {
    const St centred = St(up(x)) - coef[2 * C + c];
    return down<T>(coef[c] * St(up(dy)) + (coef[C + c] * centred + coef[3 * C + c]));
  }
};

template <class St>
void inference_stats(const BatchNormArgs& a, const Tensor& save_mean, const Tensor& save_invstd,
                     const Tensor& running_mean, const Tensor& running_var) {
  const ForwardStats<St> stats{nullptr, nullptr, opt<St>(save_mean), opt<St>(save_invstd),
                               nullptr, a.channels, a.eps};
  channel_finish<double>(nullptr, a.channels,
                         FinishInference<St>{stats, opt<const St>(running_mean),
                                             opt<const St>(running_var)});
}

}  // namespace

void batch_norm_ours(const BatchNormArgs& a, const Tensor& out, const Tensor& save_mean,
                     const Tensor& save_invstd, const Tensor& batch_var, const Tensor& input,
                     const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                     const Tensor& running_var) {
  const int64_t C = a.channels, S = a.spatial, count = a.batch * a.spatial;
  if (C == 0) return;
  const int device = input.device().index;
  ANVIL_DISPATCH_FLOAT(input.dtype(), "batch_norm", [&] {
    using T = dev_t<scalar_t>;
    using St = compute_t<T>;
    const Tensor coef = Tensor::empty({2 * C}, save_mean.options());
    const ForwardStats<St> stats{opt<const St>(weight), opt<const St>(bias), opt<St>(save_mean),
                                 opt<St>(save_invstd), opt<St>(coef), C, a.eps};
    const T* x = opt<const T>(input);
    if (a.training) {
      const auto partials =
          channel_partials<Sums2>(device, a.batch, C, S, ShiftedMoments<T>{x, S});
      channel_finish(&partials, C,
                     FinishTraining<T, St>{stats, x, S, count, opt<St>(batch_var)});
    } else {
      channel_finish<double>(nullptr, C,
                             FinishInference<St>{stats, opt<const St>(running_mean),
                                                 opt<const St>(running_var)});
    }
    channel_map<T>(opt<T>(out), x, count * C, C, S,
                   Normalize<T, St>{opt<const St>(coef), C});
  });
}

void batch_norm_backward_ours(const BatchNormArgs& a, const Tensor& grad_input,
                              const Tensor& grad_weight, const Tensor& grad_bias,
                              const Tensor& grad_out, const Tensor& input, const Tensor& weight,
                              const Tensor& save_mean, const Tensor& save_invstd) {
  const int64_t C = a.channels, S = a.spatial, count = a.batch * a.spatial;
  const bool sums = grad_weight.defined() || grad_bias.defined() ||
                    (a.training && grad_input.defined());
  if (C == 0 || (!sums && !grad_input.defined())) return;
  const int device = input.device().index;
  ANVIL_DISPATCH_FLOAT(input.dtype(), "batch_norm_backward", [&] {
    using T = dev_t<scalar_t>;
    using St = compute_t<T>;
    const Tensor coef =
        grad_input.defined() ? Tensor::empty({4 * C}, save_mean.options()) : Tensor();
    const T* x = opt<const T>(input);
    const T* dy = opt<const T>(grad_out);
    const St* mean = opt<const St>(save_mean);
    const FinishBackward<St> finish{opt<const St>(weight), mean, opt<const St>(save_invstd),
                                    opt<St>(grad_weight), opt<St>(grad_bias), opt<St>(coef),
                                    C, count, a.training};
    if (sums) {
      const auto partials =
          channel_partials<Sums2>(device, a.batch, C, S, BackwardMoments<T, St>{x, dy, mean});
      channel_finish(&partials, C, finish);
    } else {
      channel_finish<Sums2>(nullptr, C, finish);
    }
    if (grad_input.defined())
      channel_map<T>(opt<T>(grad_input), x, dy, count * C, C, S,
                     InputGrad<T, St>{opt<const St>(coef), C});
  });
}

void batch_norm_inference_stats(const BatchNormArgs& a, const Tensor& save_mean,
                                const Tensor& save_invstd, const Tensor& running_mean,
                                const Tensor& running_var) {
  if (a.channels == 0) return;
  if (save_mean.dtype() == kFloat64)
    inference_stats<double>(a, save_mean, save_invstd, running_mean, running_var);
  else
    inference_stats<float>(a, save_mean, save_invstd, running_mean, running_var);
}

}  // namespace anvil::cuda
