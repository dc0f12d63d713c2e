// CUDA 2-D convolution through cuDNN's convolution API: forward, backward data and backward
// filter, with groups and dilation. float32 runs FMA-only kernels (exact float32, no TF32)
// unless set_allow_tf32(true); float64 computes in double; float16/bfloat16 in float.
// The algorithm of each geometry, dtype, direction and layout is chosen on its first call and
// cached, in one of two ways:
// - by default, from cuDNN's heuristics (Get*Algorithm_v7, a host-side query that neither
//   benchmarks nor waits for the device): the first candidate that runs;
// - with set_cudnn_benchmark(true), by timing the candidates on the real buffers (Find*Ex,
//   which overwrites the output and waits for the device) and taking the fastest. A first call
//   inside a CUDA graph capture falls back to the heuristics, so a warm-up step runs it first.
// Both honour deterministic mode and FMA-only float32. Workspaces come from the caching
// allocator for each call and all work runs on current_stream(). The bias and its gradient
// are our kernels.
#include <algorithm>
#include <climits>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "anvil/core/cudnn_benchmark.h"
#include "anvil/core/determinism.h"
#include "backend/cuda/capture.h"
#include "backend/conv_kernels.h"
#include "backend/cuda/handles.h"
#include "backend/cuda/nn_helpers.h"
#include "backend/cuda/stream.h"

namespace anvil::cuda {
namespace {
using backend::ConvArgs;

// NHWC memory for channels-last tensors (KRSC for filters), NCHW otherwise; dims are given
// in N, C, H, W order either way.
cudnnTensorFormat_t format_of(const ConvArgs& a) {
  return a.channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
}

struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc(cudnnDataType_t t, cudnnTensorFormat_t f, int64_t n, int64_t c, int64_t h,
             int64_t w) {
    ANVIL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
    ANVIL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, f, t, int(n), int(c), int(h), int(w)));
  }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc(cudnnDataType_t t, cudnnTensorFormat_t f, int64_t k, int64_t c, int64_t h,
             int64_t w) {
    ANVIL_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d));
    ANVIL_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d, t, f, int(k), int(c), int(h), int(w)));
  }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};

struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc(const ConvArgs& a, cudnnDataType_t compute) {
    ANVIL_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
    ANVIL_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        d, int(a.pad_h), int(a.pad_w), int(a.stride_h), int(a.stride_w), int(a.dilation_h),
        int(a.dilation_w), CUDNN_CROSS_CORRELATION, compute));
    ANVIL_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d, int(a.groups)));
  }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

// The descriptors of one convolution and the settings that select its kernels.
struct Setup {
  DType dtype;
  int device;
  bool double_scale;       // alpha/beta are doubles (float64 data)
  bool fma_only;           // float32 without TF32
  cudnnMathType_t search;  // the math type the heuristics are asked about
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;

  static cudnnDataType_t data_type(DType dt) {
    switch (dt) {
      case kFloat32: return CUDNN_DATA_FLOAT;
      case kFloat64: return CUDNN_DATA_DOUBLE;
      case kFloat16: return CUDNN_DATA_HALF;
      case kBFloat16: return CUDNN_DATA_BFLOAT16;
      default:
        throw DTypeError(std::string("conv2d: dtype ") + dtype_name(dt) + " is not supported");
    }
  }

  Setup(const ConvArgs& a, DType dt, int dev)
      : dtype(dt),
        device(dev),
        double_scale(dt == kFloat64),
        fma_only(dt == kFloat32 && !allow_tf32()),
        search(dt == kFloat16 || dt == kBFloat16 ? CUDNN_TENSOR_OP_MATH
               : fma_only                        ? CUDNN_FMA_MATH
                                                 : CUDNN_DEFAULT_MATH),
        x(data_type(dt), format_of(a), a.batch, a.in_channels, a.height, a.width),
        y(data_type(dt), format_of(a), a.batch, a.out_channels, a.out_h, a.out_w),
        w(data_type(dt), format_of(a), a.out_channels, a.in_channels / a.groups, a.kernel_h,
          a.kernel_w),
        conv(a, dt == kFloat64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT) {
    ANVIL_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.d, search));
  }
  const void* one() const { return double_scale ? static_cast<const void*>(&d1) : &f1; }
  const void* zero() const { return double_scale ? static_cast<const void*>(&d0) : &f0; }

 private:
  static constexpr float f1 = 1, f0 = 0;
  static constexpr double d1 = 1, d0 = 0;
};

void check_sizes(const ConvArgs& a, const char* op) {
  for (int64_t v : {a.batch, a.in_channels, a.height, a.width, a.out_channels, a.kernel_h,
                    a.kernel_w, a.out_h, a.out_w, a.stride_h, a.stride_w, a.pad_h, a.pad_w,
                    a.dilation_h, a.dilation_w, a.groups})
    ANVIL_CHECK(v <= INT_MAX, ShapeError, op, ": cuDNN takes sizes up to ", INT_MAX, ", got ", v);
}

enum class Dir { Forward, BackwardData, BackwardFilter };

struct Choice {
  int algo;
  cudnnMathType_t math;
};

using Key = std::vector<int64_t>;
std::mutex g_choice_mutex;
std::map<Key, Choice>& choices() {
  static auto* cache = new std::map<Key, Choice>;  // outlives static teardown
  return *cache;
}

// `benchmark`: whether benchmark mode chose it, so that switching the mode chooses again.
Key key_of(Dir dir, bool benchmark, const ConvArgs& a, const Setup& s) {
  const bool deterministic = are_deterministic_algorithms_enabled();
  return {int64_t(dir), benchmark,     deterministic, s.device,   int64_t(s.dtype), s.fma_only,
          a.batch,      a.in_channels, a.height,      a.width,    a.out_channels,   a.kernel_h,
          a.kernel_w,   a.out_h,       a.out_w,       a.stride_h, a.stride_w,       a.pad_h,
          a.pad_w,      a.dilation_h,  a.dilation_w,  a.groups,   a.channels_last};
}

// The most workspace benchmark mode offers cuDNN's Find*: the largest any algorithm asks for,
// up to this cap.
constexpr size_t kMaxFindWorkspace = size_t(256) << 20;

// Times the candidates with `find(count, &returned, perf, ws, bytes)` and returns the fastest
// allowed one, or nullopt if none is (or no workspace could be had).
template <class Perf, int kCount, class Workspace, class Find>
std::optional<Choice> benchmark_choice(const Setup& s, Workspace workspace, Find find) {
  ANVIL_CUDNN_CHECK(cudnnSetConvolutionMathType(s.conv.d, s.search));
  size_t bytes = 0;
  for (int algo = 0; algo < kCount; ++algo) {
    size_t b = 0;
    if (workspace(algo, &b) == CUDNN_STATUS_SUCCESS) bytes = std::max(bytes, b);
  }
  bytes = std::min(bytes, kMaxFindWorkspace);
  Tensor ws;
  try {
    ws = library_workspace(s.device, bytes);
  } catch (const DeviceError&) {
    cudaGetLastError();  // out of memory: time only the algorithms that need no workspace
    bytes = 0;
  }
  Perf perf[kCount];
  int returned = 0;
  if (find(kCount, &returned, perf, workspace_ptr(ws), bytes) != CUDNN_STATUS_SUCCESS) {
    cudaGetLastError();
    return std::nullopt;
  }
  const bool deterministic = are_deterministic_algorithms_enabled();
  for (int i = 0; i < returned; ++i) {  // sorted fastest first
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (deterministic && perf[i].determinism != CUDNN_DETERMINISTIC) continue;
    if (s.fma_only && perf[i].mathType != CUDNN_FMA_MATH) continue;
    return Choice{int(perf[i].algo), perf[i].mathType};
  }
  return std::nullopt;
}

// Runs one convolution direction: the cached choice, or else a new one that is cached. With
// benchmark mode on (outside a graph capture) the choice is the fastest that `find` times;
// otherwise, or if that fails, the heuristics' candidates are tried in order until one runs.
// `heuristics(count, &returned, perf)` lists candidates, `workspace(algo, &bytes)` sizes one,
// `find(count, &returned, perf, ws, bytes)` times them, `exec(algo, ws, bytes)` runs one (all
// return cudnnStatus_t).
template <class Perf, int kCount, class Heuristics, class Workspace, class Find, class Exec>
void convolve(Dir dir, const char* op, const ConvArgs& a, Setup& s, Heuristics heuristics,
              Workspace workspace, Find find, Exec exec) {
  auto run = [&](const Choice& c) {
    ANVIL_CUDNN_CHECK(cudnnSetConvolutionMathType(s.conv.d, c.math));
    size_t bytes = 0;
    cudnnStatus_t st = workspace(c.algo, &bytes);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    const Tensor ws = library_workspace(s.device, bytes);
    return exec(c.algo, workspace_ptr(ws), bytes);
  };
  auto cached = [&](const Key& key) -> std::optional<Choice> {
    std::lock_guard<std::mutex> lock(g_choice_mutex);
    auto it = choices().find(key);
    if (it == choices().end()) return std::nullopt;
    return it->second;
  };
  auto remember = [&](const Key& key, Choice c) {
    std::lock_guard<std::mutex> lock(g_choice_mutex);
    choices()[key] = c;
  };

  bool benchmark = cudnn_benchmark_enabled();
  Key key = key_of(dir, benchmark, a, s);
  std::optional<Choice> c = cached(key);
  if (!c && benchmark && stream_is_capturing()) {  // Find waits for the device: not in a graph
    benchmark = false;
    key = key_of(dir, false, a, s);
    c = cached(key);
  }
  if (c) {
    check_cudnn(run(*c), op);
    return;
  }
  if (benchmark) {
    if (const std::optional<Choice> best = benchmark_choice<Perf, kCount>(s, workspace, find)) {
      try {
        if (run(*best) == CUDNN_STATUS_SUCCESS) {
          remember(key, *best);
          return;
        }
      } catch (const DeviceError&) {
        cudaGetLastError();  // no memory for its workspace: fall back to the heuristics
      }
    }
  }

  Perf perf[kCount];
  int returned = 0;
  ANVIL_CUDNN_CHECK(heuristics(kCount, &returned, perf));
  cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
  const bool deterministic = are_deterministic_algorithms_enabled();
  for (int i = 0; i < returned; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    // Some backward algorithms accumulate with atomics: skip them in deterministic mode.
    if (deterministic && perf[i].determinism != CUDNN_DETERMINISTIC) continue;
    const int algo = int(perf[i].algo);
    // cuDNN may report DEFAULT_MATH (which permits TF32) for float32: keep FMA when asked to.
    const cudnnMathType_t math = s.fma_only ? CUDNN_FMA_MATH : perf[i].mathType;
    ANVIL_CUDNN_CHECK(cudnnSetConvolutionMathType(s.conv.d, math));
    size_t bytes = 0;
    if ((last = workspace(algo, &bytes)) != CUDNN_STATUS_SUCCESS) continue;
    Tensor ws;
    try {
      ws = library_workspace(s.device, bytes);
    } catch (const DeviceError&) {
      cudaGetLastError();  // out of memory for this candidate: try the next
      continue;
    }
    last = exec(algo, workspace_ptr(ws), bytes);
    if (last == CUDNN_STATUS_SUCCESS) {
      remember(key, Choice{algo, math});
      return;
    }
    if (last != CUDNN_STATUS_NOT_SUPPORTED && last != CUDNN_STATUS_BAD_PARAM) check_cudnn(last, op);
  }
  check_cudnn(last == CUDNN_STATUS_SUCCESS ? CUDNN_STATUS_NOT_SUPPORTED : last,
              (std::string(op) + ": no cuDNN algorithm runs this convolution").c_str());
}

void conv2d_cuda(const ConvArgs& a, const Tensor& out, const Tensor& input, const Tensor& weight,
                 const Tensor& bias) {
  if (out.numel() == 0) return;
  check_sizes(a, "conv2d");
  const int device = out.device().index;
  DeviceGuard guard(device);
  if (input.numel() == 0 || weight.numel() == 0) {
    ANVIL_CUDA_CHECK(cudaMemsetAsync(out.data_ptr(), 0, size_t(out.numel()) * out.element_size(),
                                     current_stream()));
  } else {
    Setup s(a, input.dtype(), device);
    cudnnHandle_t h = cudnn_handle(device);
    convolve<cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT>(
        Dir::Forward, "conv2d", a, s,
        [&](int n, int* ret, cudnnConvolutionFwdAlgoPerf_t* p) {
          return cudnnGetConvolutionForwardAlgorithm_v7(h, s.x.d, s.w.d, s.conv.d, s.y.d, n, ret,
                                                        p);
        },
        [&](int algo, size_t* bytes) {
          return cudnnGetConvolutionForwardWorkspaceSize(
              h, s.x.d, s.w.d, s.conv.d, s.y.d, cudnnConvolutionFwdAlgo_t(algo), bytes);
        },
        [&](int n, int* ret, cudnnConvolutionFwdAlgoPerf_t* p, void* ws, size_t bytes) {
          return cudnnFindConvolutionForwardAlgorithmEx(
              h, s.x.d, input.data_ptr(), s.w.d, weight.data_ptr(), s.conv.d, s.y.d,
              out.data_ptr(), n, ret, p, ws, bytes);
        },
        [&](int algo, void* ws, size_t bytes) {
          return cudnnConvolutionForward(h, s.one(), s.x.d, input.data_ptr(), s.w.d,
                                         weight.data_ptr(), s.conv.d,
                                         cudnnConvolutionFwdAlgo_t(algo), ws, bytes, s.zero(),
                                         s.y.d, out.data_ptr());
        });
  }
  if (bias.defined() || a.relu) {  // one pass for the bias and the ReLU after it
    if (a.channels_last)  // rows of an [N*OH*OW, K] matrix
      add_channel_bias(out, bias, a.batch * a.out_h * a.out_w, a.out_channels, 1, a.relu);
    else
      add_channel_bias(out, bias, a.batch, a.out_channels, a.out_h * a.out_w, a.relu);
  }
}

void conv2d_backward_input_cuda(const ConvArgs& a, const Tensor& grad_input,
                                const Tensor& grad_out, const Tensor& weight) {
  if (grad_input.numel() == 0) return;
  check_sizes(a, "conv2d_backward_input");
  const int device = grad_input.device().index;
  DeviceGuard guard(device);
  if (grad_out.numel() == 0 || weight.numel() == 0) {
    ANVIL_CUDA_CHECK(cudaMemsetAsync(grad_input.data_ptr(), 0,
                                     size_t(grad_input.numel()) * grad_input.element_size(),
                                     current_stream()));
    return;
  }
  Setup s(a, grad_out.dtype(), device);
  cudnnHandle_t h = cudnn_handle(device);
  convolve<cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT>(
      Dir::BackwardData, "conv2d_backward_input", a, s,
      [&](int n, int* ret, cudnnConvolutionBwdDataAlgoPerf_t* p) {
        return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, s.w.d, s.y.d, s.conv.d, s.x.d, n,
                                                           ret, p);
      },
      [&](int algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(
            h, s.w.d, s.y.d, s.conv.d, s.x.d, cudnnConvolutionBwdDataAlgo_t(algo), bytes);
      },
      [&](int n, int* ret, cudnnConvolutionBwdDataAlgoPerf_t* p, void* ws, size_t bytes) {
        return cudnnFindConvolutionBackwardDataAlgorithmEx(
            h, s.w.d, weight.data_ptr(), s.y.d, grad_out.data_ptr(), s.conv.d, s.x.d,
            grad_input.data_ptr(), n, ret, p, ws, bytes);
      },
      [&](int algo, void* ws, size_t bytes) {
        return cudnnConvolutionBackwardData(h, s.one(), s.w.d, weight.data_ptr(), s.y.d,
                                            grad_out.data_ptr(), s.conv.d,
                                            cudnnConvolutionBwdDataAlgo_t(algo), ws, bytes,
                                            s.zero(), s.x.d, grad_input.data_ptr());
      });
}

void conv2d_backward_weight_cuda(const ConvArgs& a, const Tensor& grad_weight,
                                 const Tensor& grad_bias, const Tensor& grad_out,
                                 const Tensor& input) {
  check_sizes(a, "conv2d_backward_weight");
  const int device = grad_weight.device().index;
  DeviceGuard guard(device);
  if (grad_bias.defined()) {
    if (a.channels_last)
      channel_sums(grad_bias, grad_out, a.batch * a.out_h * a.out_w, a.out_channels, 1);
    else
      channel_sums(grad_bias, grad_out, a.batch, a.out_channels, a.out_h * a.out_w);
  }
  if (grad_weight.numel() == 0) return;
  if (grad_out.numel() == 0 || input.numel() == 0) {
    ANVIL_CUDA_CHECK(cudaMemsetAsync(grad_weight.data_ptr(), 0,
                                     size_t(grad_weight.numel()) * grad_weight.element_size(),
                                     current_stream()));
    return;
  }
  Setup s(a, grad_out.dtype(), device);
  cudnnHandle_t h = cudnn_handle(device);
  convolve<cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT>(
      Dir::BackwardFilter, "conv2d_backward_weight", a, s,
      [&](int n, int* ret, cudnnConvolutionBwdFilterAlgoPerf_t* p) {
        return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, s.x.d, s.y.d, s.conv.d, s.w.d, n,
                                                             ret, p);
      },
      [&](int algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(
            h, s.x.d, s.y.d, s.conv.d, s.w.d, cudnnConvolutionBwdFilterAlgo_t(algo), bytes);
      },
      [&](int n, int* ret, cudnnConvolutionBwdFilterAlgoPerf_t* p, void* ws, size_t bytes) {
        return cudnnFindConvolutionBackwardFilterAlgorithmEx(
            h, s.x.d, input.data_ptr(), s.y.d, grad_out.data_ptr(), s.conv.d, s.w.d,
            grad_weight.data_ptr(), n, ret, p, ws, bytes);
      },
      [&](int algo, void* ws, size_t bytes) {
        return cudnnConvolutionBackwardFilter(h, s.one(), s.x.d, input.data_ptr(), s.y.d,
                                              grad_out.data_ptr(), s.conv.d,
                                              cudnnConvolutionBwdFilterAlgo_t(algo), ws, bytes,
                                              s.zero(), s.w.d, grad_weight.data_ptr());
      });
}

ANVIL_REGISTER_KERNEL(backend::conv2d_kernels, CUDA, &conv2d_cuda);
ANVIL_REGISTER_KERNEL(backend::conv2d_backward_input_kernels, CUDA, &conv2d_backward_input_cuda);
ANVIL_REGISTER_KERNEL(backend::conv2d_backward_weight_kernels, CUDA,
                      &conv2d_backward_weight_cuda);

}  // namespace
}  // namespace anvil::cuda
