// CPU reductions over the rows of a contiguous [M, N] input. Floating sums accumulate in
// double so that the reference backend is at least as accurate as the backends it checks.
#include <cmath>
#include <limits>

#include "backend/cpu/loops.h"
#include "backend/reduce_kernels.h"

namespace anvil::cpu {
namespace {
using backend::ReduceArgs;
using backend::ReduceOp;

template <class T>
using acc_t = std::conditional_t<std::is_floating_point_v<compute_t<T>>, double, int64_t>;

template <class T, class O>
void reduce_rows(const ReduceArgs& r, const Tensor& out, const Tensor& in) {
  const T* x = in.data<T>();
  O* y = static_cast<O*>(out.data_ptr());
  const int64_t N = r.cols;
  parallel_for(r.rows, N, [&](int64_t b, int64_t e) {
    for (int64_t m = b; m < e; ++m) {
      const T* row = x + m * N;
      switch (r.op) {
        case ReduceOp::Sum:
        case ReduceOp::Mean: {
          acc_t<T> s = 0;
          for (int64_t i = 0; i < N; ++i) s += acc_t<T>(compute_t<T>(row[i]));
          if (r.op == ReduceOp::Mean) {
            y[m] = O(double(s) / double(N));
          } else {
            y[m] = O(s);
          }
          break;
        }
        case ReduceOp::Max:
        case ReduceOp::Min:
        case ReduceOp::ArgMax:
        case ReduceOp::ArgMin: {
          // NaN wins (as in PyTorch); ties keep the first index.
          bool want_max = r.op == ReduceOp::Max || r.op == ReduceOp::ArgMax;
          int64_t best = 0;
          compute_t<T> bv = row[0];
          for (int64_t i = 1; i < N; ++i) {
            compute_t<T> v = row[i];
            if (bv != bv) break;
            if (v != v || (want_max ? v > bv : v < bv)) { bv = v; best = i; }
          }
          if (r.op == ReduceOp::ArgMax || r.op == ReduceOp::ArgMin) {
            y[m] = O(best);
          } else {
            y[m] = O(row[best]);
          }
          break;
        }
        case ReduceOp::Var: {
          double mean = 0;
          for (int64_t i = 0; i < N; ++i) mean += double(compute_t<T>(row[i]));
          mean /= double(N);
          double ss = 0;
          for (int64_t i = 0; i < N; ++i) {
            double d = double(compute_t<T>(row[i])) - mean;
            ss += d * d;
          }
          double denom = double(N - r.correction);
          y[m] = O(denom > 0 ? ss / denom : std::numeric_limits<double>::quiet_NaN());
          break;
        }
      }
    }
  });
}

void reduce_cpu(const ReduceArgs& r, const Tensor& out, const Tensor& in) {
  if (r.rows == 0) return;
  ANVIL_DISPATCH_ALL(in.dtype(), "reduce", [&] {
    using T = scalar_t;
    // Results keep the input's dtype, except indices and integer sums (int64).
    if (out.dtype() == in.dtype()) {
      reduce_rows<T, T>(r, out, in);
    } else if (out.dtype() == kInt64) {
      reduce_rows<T, int64_t>(r, out, in);
    } else {
      throw DTypeError(std::string("reduce: cannot reduce ") + dtype_name(in.dtype()) + " into " +
                       dtype_name(out.dtype()));
    }
  });
}

ANVIL_REGISTER_KERNEL(backend::reduce_kernels, CPU, &reduce_cpu);

}  // namespace
}  // namespace anvil::cpu
