// CUDA batch normalisation, forward and backward: a block per channel, sums in double, the
// formulas of backend/cpu/batch_norm.cpp (our kernels rather than cuDNN's, whose training
// forward also folds the running-statistics update in; the op layer does that update from
// batch_var here, as on the CPU). Statistics and parameters are float for the 16-bit inputs.
#include "backend/cuda/reduce.cuh"
#include "backend/norm_kernels.h"

namespace anvil::cuda {
namespace {
using backend::BatchNormArgs;

// Element j of channel c (j over the N * S positions of the channel).
__device__ inline int64_t at(int64_t c, int64_t j, int64_t C, int64_t S) {
  return ((j / S) * C + c) * S + j % S;
}

template <class T, class St>
__global__ void batch_norm_kernel(int64_t N, int64_t C, int64_t S, double eps, bool training,
                                  const T* x, T* y, const St* w, const St* b, const St* rm,
                                  const St* rv, St* mean_out, St* invstd_out, St* bvar) {
  const int64_t c = blockIdx.x, M = N * S;
  double mean, var;
  if (training) {
    double s = 0;
    for (int64_t j = threadIdx.x; j < M; j += blockDim.x) s += double(St(up(x[at(c, j, C, S)])));
    mean = team_sum<true>(s) / double(M);
    double ss = 0;
    for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
      const double d = double(St(up(x[at(c, j, C, S)]))) - mean;
      ss += d * d;
    }
    ss = team_sum<true>(ss);
    var = ss / double(M);
    if (bvar && threadIdx.x == 0) bvar[c] = M > 1 ? St(ss / double(M - 1)) : St(NAN);
  } else {
    mean = double(rm[c]);
    var = double(rv[c]);
  }
  const double invstd = 1.0 / sqrt(var + eps);
  if (threadIdx.x == 0) {
    mean_out[c] = St(mean);
    invstd_out[c] = St(invstd);
  }
  const double scale = (w ? double(w[c]) : 1.0) * invstd;
  const double shift = (b ? double(b[c]) : 0.0) - mean * scale;
  for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
    const int64_t k = at(c, j, C, S);
    y[k] = down<T>(St(double(St(up(x[k]))) * scale + shift));
  }
}

template <class T, class St>
__global__ void batch_norm_backward_kernel(int64_t N, int64_t C, int64_t S, bool training,
                                           const T* x, const T* dy, const St* w,
                                           const St* mean_in, const St* invstd_in, T* dx, St* dw,
                                           St* db) {
  const int64_t c = blockIdx.x, M = N * S;
  const double mean = double(mean_in[c]), invstd = double(invstd_in[c]);
  double sum_dy = 0, sum_dy_xhat = 0;
  for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
    const int64_t k = at(c, j, C, S);
    const double g = double(St(up(dy[k])));
    sum_dy += g;
    sum_dy_xhat += g * (double(St(up(x[k]))) - mean) * invstd;
  }
  sum_dy = team_sum<true>(sum_dy);
  sum_dy_xhat = team_sum<true>(sum_dy_xhat);
  if (threadIdx.x == 0) {
    if (dw) dw[c] = St(sum_dy_xhat);
    if (db) db[c] = St(sum_dy);
  }
  if (!dx) return;
  const double scale = (w ? double(w[c]) : 1.0) * invstd;
  const double mean_dy = sum_dy / double(M), mean_dy_xhat = sum_dy_xhat / double(M);
  for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
    const int64_t k = at(c, j, C, S);
    double g = double(St(up(dy[k])));
    if (training) {
      const double xhat = (double(St(up(x[k]))) - mean) * invstd;
      g = g - mean_dy - xhat * mean_dy_xhat;
    }
    dx[k] = down<T>(St(g * scale));
  }
}

template <class P> P* opt(const Tensor& t) {
  return t.defined() ? static_cast<P*>(t.data_ptr()) : nullptr;
}

void batch_norm_cuda(const BatchNormArgs& a, const Tensor& out, const Tensor& save_mean,
                     const Tensor& save_invstd, const Tensor& batch_var, const Tensor& input,
                     const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                     const Tensor& running_var) {
  if (a.channels == 0) return;
  DeviceGuard guard(input.device().index);
  ANVIL_DISPATCH_FLOAT(input.dtype(), "batch_norm", [&] {
    using T = dev_t<scalar_t>;
    using St = compute_t<T>;
    batch_norm_kernel<T, St><<<int(a.channels), kReduceThreads, 0, current_stream()>>>(
        a.batch, a.channels, a.spatial, a.eps, a.training, opt<const T>(input), opt<T>(out),
        opt<const St>(weight), opt<const St>(bias),
        a.training ? nullptr : opt<const St>(running_mean),
        a.training ? nullptr : opt<const St>(running_var), opt<St>(save_mean),
        opt<St>(save_invstd), opt<St>(batch_var));
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

void batch_norm_backward_cuda(const BatchNormArgs& a, const Tensor& grad_input,
                              const Tensor& grad_weight, const Tensor& grad_bias,
                              const Tensor& grad_out, const Tensor& input, const Tensor& weight,
                              const Tensor& save_mean, const Tensor& save_invstd) {
  if (a.channels == 0) return;
  DeviceGuard guard(input.device().index);
  ANVIL_DISPATCH_FLOAT(input.dtype(), "batch_norm_backward", [&] {
    using T = dev_t<scalar_t>;
    using St = compute_t<T>;
    batch_norm_backward_kernel<T, St><<<int(a.channels), kReduceThreads, 0, current_stream()>>>(
        a.batch, a.channels, a.spatial, a.training, opt<const T>(input), opt<const T>(grad_out),
        opt<const St>(weight), opt<const St>(save_mean), opt<const St>(save_invstd),
        opt<T>(grad_input), opt<St>(grad_weight), opt<St>(grad_bias));
  });
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

ANVIL_REGISTER_KERNEL(backend::batch_norm_kernels, CUDA, &batch_norm_cuda);
ANVIL_REGISTER_KERNEL(backend::batch_norm_backward_kernels, CUDA, &batch_norm_backward_cuda);

}  // namespace
}  // namespace anvil::cuda
