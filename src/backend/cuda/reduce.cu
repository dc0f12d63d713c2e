// CUDA reductions over the rows of a contiguous [M, N] input: one warp per row for short rows,
// one block per row for long ones. Floating sums accumulate in double and integer sums in
// int64, as the CPU reference does; max/min/argmax/argmin let NaN win and keep the first index
// on ties.
#include "backend/cuda/reduce.cuh"
#include "backend/reduce_kernels.h"

namespace anvil::cuda {
namespace {
using backend::ReduceArgs;
using backend::ReduceOp;

// Exact accumulator/ordering type: double for floats, long long for integers and bool.
template <class T> using wide_t = std::conditional_t<is_float_v<T>, double, long long>;

// Writes one result: int64 when the output is int64 (integer sums, indices), else T.
template <class T, class V>
__device__ inline void store(void* y, bool out_i64, int64_t row, V v) {
  if (out_i64) static_cast<long long*>(y)[row] = static_cast<long long>(v);
  else static_cast<T*>(y)[row] = from_double<T>(double(v));
}

template <bool kBlock, class T>
__global__ void sum_kernel(const T* x, void* y, bool out_i64, bool mean, int64_t rows,
                           int64_t cols) {
  using W = wide_t<T>;
  using Tm = Team<kBlock>;
  for (int64_t r = Tm::first_row(); r < rows; r += Tm::row_step()) {
    const T* row = x + r * cols;
    W s = 0;
    for (int64_t j = Tm::lane(); j < cols; j += Tm::size()) s += W(up(row[j]));
    s = team_sum<kBlock>(s);
    if (Tm::lane() == 0) {
      if (mean) store<T>(y, out_i64, r, double(s) / double(cols));
      else if constexpr (std::is_integral_v<T>) {
        if (out_i64) static_cast<long long*>(y)[r] = s;
        else static_cast<T*>(y)[r] = T(s);
      } else {
        store<T>(y, out_i64, r, s);
      }
    }
  }
}

// The best element seen so far; i < 0 means none.
template <class W> struct Best {
  W v;
  long long i;
};

template <class W> struct PickBest {
  bool want_max;
  __device__ Best<W> operator()(Best<W> a, Best<W> b) const {
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    const bool an = a.v != a.v, bn = b.v != b.v;  // NaN wins, the first NaN among NaNs
    if (an || bn) return (an && bn) ? (a.i < b.i ? a : b) : (an ? a : b);
    if (want_max ? b.v > a.v : b.v < a.v) return b;
    if (want_max ? a.v > b.v : a.v < b.v) return a;
    return a.i < b.i ? a : b;  // ties keep the first index
  }
};

struct ShflBest {
  template <class W> __device__ Best<W> operator()(Best<W> b, int mask) const {
    return {shfl_xor(b.v, mask), shfl_xor(b.i, mask)};
  }
};

template <bool kBlock, class T>
__global__ void extremum_kernel(const T* x, void* y, bool want_max, bool want_index,
                                int64_t rows, int64_t cols) {
  using W = wide_t<T>;
  using Tm = Team<kBlock>;
  const PickBest<W> pick{want_max};
  for (int64_t r = Tm::first_row(); r < rows; r += Tm::row_step()) {
    const T* row = x + r * cols;
    Best<W> b{W(0), -1};
    for (int64_t j = Tm::lane(); j < cols; j += Tm::size()) b = pick(b, {W(up(row[j])), j});
    b = team_reduce<kBlock>(b, pick, ShflBest{});
    if (Tm::lane() == 0) {
      if (want_index) static_cast<long long*>(y)[r] = b.i;
      else static_cast<T*>(y)[r] = row[b.i];
    }
  }
}

// Two passes (mean, then squared deviations), in double, as the CPU.
template <bool kBlock, class T>
__global__ void var_kernel(const T* x, T* y, int64_t correction, int64_t rows, int64_t cols) {
  using Tm = Team<kBlock>;
  for (int64_t r = Tm::first_row(); r < rows; r += Tm::row_step()) {
    const T* row = x + r * cols;
    double s = 0;
    for (int64_t j = Tm::lane(); j < cols; j += Tm::size()) s += double(up(row[j]));
    const double mean = team_sum<kBlock>(s) / double(cols);
    double ss = 0;
    for (int64_t j = Tm::lane(); j < cols; j += Tm::size()) {
      const double d = double(up(row[j])) - mean;
      ss += d * d;
    }
    ss = team_sum<kBlock>(ss);
    if (Tm::lane() == 0) {
      const double denom = double(cols - correction);
      y[r] = from_double<T>(denom > 0 ? ss / denom : __longlong_as_double(0x7ff8000000000000ll));
    }
  }
}

template <bool kBlock, class T>
void launch(const ReduceArgs& r, const Tensor& out, const T* x, bool out_i64) {
  const int blocks = reduce_blocks(r.rows, kBlock);
  void* y = out.data_ptr();
  switch (r.op) {
    case ReduceOp::Sum:
    case ReduceOp::Mean:
      sum_kernel<kBlock, T><<<blocks, kReduceThreads, 0, current_stream()>>>(
          x, y, out_i64, r.op == ReduceOp::Mean, r.rows, r.cols);
      break;
    case ReduceOp::Max:
    case ReduceOp::Min:
    case ReduceOp::ArgMax:
    case ReduceOp::ArgMin: {
      const bool want_max = r.op == ReduceOp::Max || r.op == ReduceOp::ArgMax;
      const bool want_index = r.op == ReduceOp::ArgMax || r.op == ReduceOp::ArgMin;
      extremum_kernel<kBlock, T><<<blocks, kReduceThreads, 0, current_stream()>>>(
          x, y, want_max, want_index, r.rows, r.cols);
      break;
    }
    case ReduceOp::Var:
      if constexpr (is_float_v<T>) {
        var_kernel<kBlock, T><<<blocks, kReduceThreads, 0, current_stream()>>>(
            x, static_cast<T*>(y), r.correction, r.rows, r.cols);
      } else {
        throw DTypeError("var: expected a floating-point input");
      }
      break;
  }
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

void reduce_cuda(const ReduceArgs& r, const Tensor& out, const Tensor& in) {
  if (r.rows == 0) return;
  DeviceGuard guard(in.device().index);
  ANVIL_DISPATCH_ALL(in.dtype(), "reduce", [&] {
    using T = dev_t<scalar_t>;
    // Results keep the input's dtype, except indices and integer sums (int64).
    bool out_i64 = false;
    if (out.dtype() == kInt64 && in.dtype() != kInt64) {
      out_i64 = true;
    } else if (out.dtype() != in.dtype()) {
      throw DTypeError(std::string("reduce: cannot reduce ") + dtype_name(in.dtype()) + " into " +
                       dtype_name(out.dtype()));
    }
    const bool want_index = r.op == ReduceOp::ArgMax || r.op == ReduceOp::ArgMin;
    out_i64 = out_i64 || want_index;
    const T* x = static_cast<const T*>(in.data_ptr());
    if (r.cols > kWarpRowLimit) launch<true, T>(r, out, x, out_i64);
    else launch<false, T>(r, out, x, out_i64);
  });
}

ANVIL_REGISTER_KERNEL(backend::reduce_kernels, CUDA, &reduce_cuda);

}  // namespace
}  // namespace anvil::cuda
