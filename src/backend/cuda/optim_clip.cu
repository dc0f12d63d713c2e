// CUDA halves of clip_grad_norm_, without a host synchronisation: multi-tensor kernels write
// one partial result per chunk (in double), one block combines them in a fixed order (so the
// norm is deterministic) into the 0-dim output, and a multi-tensor kernel scales the
// gradients by the coefficient it computes from that output on the device.
#include "backend/cuda/launch.cuh"
#include "backend/cuda/optim_tensor_lists.cuh"
#include "backend/cuda/stream.h"
#include "backend/optim_kernels.h"

namespace anvil::cuda {
namespace {
namespace om = backend::optim_math;
namespace tl = tensor_lists;

constexpr int kMaxTensors = 110;

enum NormMode : int { kTwo, kOne, kInf, kP };

__device__ inline double combine(int mode, double a, double b) {
  if (mode != kInf) return a + b;
  return (a != a || a > b) ? a : b;  // a max where NaN wins
}

// Combines the block's values; thread 0 gets the result.
__device__ inline double block_combine(int mode, double v) {
  __shared__ double warp_results[tl::kBlockThreads / 32];
  for (int mask = 16; mask > 0; mask >>= 1)
    v = combine(mode, v, __shfl_xor_sync(0xffffffffu, v, mask));
  const int warp = int(threadIdx.x) / 32, warps = int(blockDim.x + 31) / 32;
  if (threadIdx.x % 32 == 0) warp_results[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0)
    for (int w = 1; w < warps; ++w) v = combine(mode, v, warp_results[w]);
  return v;
}

struct ReadArgs {
  const void* ptr[kMaxTensors];
  int64_t numel[kMaxTensors];
  tl::BlockTable blocks;
};
static_assert(tl::fits_kernel_params<ReadArgs, int, double, double*>());

template <class T>
__global__ void __launch_bounds__(tl::kBlockThreads)
    norm_partials_kernel(ReadArgs a, int mode, double p, double* partials) {
  int s;
  int64_t begin, end;
  tl::chunk_range(a.blocks, a.numel, s, begin, end);
  const T* x = static_cast<const T*>(a.ptr[s]);
  double acc = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const double v = fabs(double(up(x[i])));
    switch (mode) {
      case kTwo:
        acc += v * v;
        break;
      case kOne:
        acc += v;
        break;
      case kInf:
        acc = combine(mode, acc, v);
        break;
      default:
        acc += ::pow(v, p);
        break;
    }
  }
  acc = block_combine(mode, acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

template <class D>
__global__ void __launch_bounds__(tl::kBlockThreads)
    norm_finish_kernel(const double* partials, int64_t n, int mode, double p, D* out) {
  double acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc = combine(mode, acc, partials[i]);
  acc = block_combine(mode, acc);
  if (threadIdx.x != 0) return;
  if (mode == kTwo) acc = sqrt(acc);
  if (mode == kP) acc = ::pow(acc, 1.0 / p);
  *out = down<D>(acc);
}

// Splits the positions of `ts` by dtype, in order.
std::vector<std::vector<size_t>> by_dtype(const std::vector<Tensor>& ts) {
  std::vector<std::vector<size_t>> groups;
  std::vector<DType> dtypes;
  for (size_t i = 0; i < ts.size(); ++i) {
    size_t g = 0;
    while (g < dtypes.size() && dtypes[g] != ts[i].dtype()) ++g;
    if (g == dtypes.size()) {
      dtypes.push_back(ts[i].dtype());
      groups.emplace_back();
    }
    groups[g].push_back(i);
  }
  return groups;
}

int64_t chunks_of(int64_t n) { return (n + tl::kChunk - 1) / tl::kChunk; }

void grad_norm_cuda(const std::vector<Tensor>& grads, double p, const Tensor& out) {
  DeviceGuard guard(out.device().index);
  const int mode = std::isinf(p) ? kInf : p == 2 ? kTwo : p == 1 ? kOne : kP;
  int64_t total_chunks = 0;
  for (const Tensor& g : grads) total_chunks += chunks_of(g.numel());
  Tensor partials = Tensor::empty({std::max<int64_t>(total_chunks, 1)},
                                  TensorOptions(kFloat64).device(out.device()));
  double* next = static_cast<double*>(partials.data_ptr());
  for (const auto& group : by_dtype(grads)) {
    std::vector<int64_t> numels;
    for (size_t i : group) numels.push_back(grads[i].numel());
    ANVIL_DISPATCH_FLOAT(grads[group[0]].dtype(), "clip_grad_norm_", [&] {
      using T = dev_t<scalar_t>;
      auto set = [&](ReadArgs& a, int s, size_t i) { a.ptr[s] = grads[group[i]].data_ptr(); };
      auto launch = [&](const ReadArgs& a, int blocks) {
        norm_partials_kernel<T>
            <<<blocks, tl::kBlockThreads, 0, current_stream()>>>(a, mode, p, next);
        ANVIL_CUDA_CHECK(cudaGetLastError());
        next += blocks;  // every block writes one partial, in launch order
      };
      ReadArgs args{};
      tl::for_each_launch<kMaxTensors>(numels, args, set, launch);
    });
  }
  const int64_t written = next - static_cast<double*>(partials.data_ptr());
  ANVIL_DISPATCH_FLOAT(out.dtype(), "clip_grad_norm_", [&] {
    using D = dev_t<scalar_t>;
    norm_finish_kernel<D><<<1, tl::kBlockThreads, 0, current_stream()>>>(
        static_cast<const double*>(partials.data_ptr()), written, mode, p,
        static_cast<D*>(out.data_ptr()));
    ANVIL_CUDA_CHECK(cudaGetLastError());
  });
}

// Rounds a value of D's compute type to D and back.
template <class D>
struct RoundTo {
  __device__ compute_t<D> operator()(compute_t<D> x) const { return up(down<D>(x)); }
};

struct WriteArgs {
  void* ptr[kMaxTensors];
  int64_t numel[kMaxTensors];
  tl::BlockTable blocks;
};
static_assert(tl::fits_kernel_params<WriteArgs, const void*, double>());

template <class T, class D>
__global__ void __launch_bounds__(tl::kBlockThreads)
    scale_kernel(WriteArgs a, const D* total, double max_norm) {
  using C = compute_t<T>;
  using CD = compute_t<D>;
  const RoundTo<D> round;
  const CD coef = om::clip_coefficient(up(*total), round(CD(max_norm)), round(CD(1e-6)), round);
  const C c = up(down<T>(coef));  // the coefficient in the gradient's dtype
  int s;
  int64_t begin, end;
  tl::chunk_range(a.blocks, a.numel, s, begin, end);
  T* x = static_cast<T*>(a.ptr[s]);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
    x[i] = down<T>(om::mul(up(x[i]), c));
}

void grad_scale_cuda(const std::vector<Tensor>& grads, const Tensor& total, double max_norm) {
  DeviceGuard guard(total.device().index);
  for (const auto& group : by_dtype(grads)) {
    std::vector<int64_t> numels;
    for (size_t i : group) numels.push_back(grads[i].numel());
    ANVIL_DISPATCH_FLOAT(total.dtype(), "clip_grad_norm_", [&] {
      using D = dev_t<scalar_t>;
      const D* t = static_cast<const D*>(total.data_ptr());
      ANVIL_DISPATCH_FLOAT(grads[group[0]].dtype(), "clip_grad_norm_", [&] {
        using T = dev_t<scalar_t>;
        auto set = [&](WriteArgs& a, int s, size_t i) { a.ptr[s] = grads[group[i]].data_ptr(); };
        auto launch = [&](const WriteArgs& a, int blocks) {
          scale_kernel<T, D><<<blocks, tl::kBlockThreads, 0, current_stream()>>>(a, t, max_norm);
          ANVIL_CUDA_CHECK(cudaGetLastError());
        };
        WriteArgs args{};
        tl::for_each_launch<kMaxTensors>(numels, args, set, launch);
      });
    });
  }
}

ANVIL_REGISTER_KERNEL(backend::grad_norm_kernels, CUDA, &grad_norm_cuda);
ANVIL_REGISTER_KERNEL(backend::grad_scale_kernels, CUDA, &grad_scale_cuda);

}  // namespace
}  // namespace anvil::cuda
