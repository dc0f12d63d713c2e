// avg_pool2d's forward through cuDNN's pooling call, measured 1.4-1.8x faster than our kernel
// (bench/bench_pool.cpp). cuDNN's two average modes are torch's divisors (count_include_pad:
// the window clipped to the padded input; otherwise to the input) only while no window reaches
// past the padded input, that is with the floor output size; ceil_mode's overhanging last
// window, float64, sizes past cuDNN's int dims, views not 16-byte aligned and any case cuDNN
// declines go to our kernel. The backward stays ours: our interface has no x and y for
// cudnnPoolingBackward, and cuDNN does not document that its average modes leave them unread.
// Runs on current_stream(); nothing waits for the device.
#include "backend/cuda/pool_cudnn.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <utility>

#include "backend/cuda/cudnn_tensor.h"
#include "backend/cuda/handles.h"

// cuDNN 9 marks its legacy pooling calls deprecated but still ships and supports them; with
// CUDNN_WARN_DEPRECATED defined, -Werror must not make them fatal.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace anvil::cuda {
namespace {
using backend::PoolArgs;

constexpr int64_t kFactorSearch = 1024;

struct PoolingDescriptor {
  cudnnPoolingDescriptor_t d = nullptr;
  cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
  explicit PoolingDescriptor(const PoolArgs& a) {
    ANVIL_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&d));
    const cudnnPoolingMode_t mode = a.count_include_pad
                                        ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                        : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    status =
        cudnnSetPooling2dDescriptor(d, mode, CUDNN_PROPAGATE_NAN, int(a.kernel_h), int(a.kernel_w),
                                    int(a.pad_h), int(a.pad_w), int(a.stride_h), int(a.stride_w));
  }
  ~PoolingDescriptor() { cudnnDestroyPoolingDescriptor(d); }
  PoolingDescriptor(const PoolingDescriptor&) = delete;
  PoolingDescriptor& operator=(const PoolingDescriptor&) = delete;
};

// The floor output size, the only one whose windows all lie within the padded input.
int64_t floor_size(int64_t in, int64_t k, int64_t pad, int64_t stride) {
  return (in + 2 * pad - k) / stride + 1;
}

// True where cuDNN's average modes are torch's avg_pool2d and its int dims hold the sizes.
bool takes(const PoolArgs& a, const Tensor& out, const Tensor& input) {
  const DType dt = input.dtype();
  if (dt != kFloat32 && dt != kFloat16 && dt != kBFloat16) return false;
  if (input.numel() == 0 || out.numel() == 0) return false;
  if (input.numel() > INT_MAX || out.numel() > INT_MAX) return false;  // cuDNN's int offsets
  if (a.dilation_h != 1 || a.dilation_w != 1) return false;
  if (a.pad_h >= a.kernel_h || a.pad_w >= a.kernel_w) return false;
  if (a.out_h != floor_size(a.height, a.kernel_h, a.pad_h, a.stride_h) ||
      a.out_w != floor_size(a.width, a.kernel_w, a.pad_w, a.stride_w))
    return false;
  for (int64_t v : {a.kernel_h, a.kernel_w, a.stride_h, a.stride_w})
    if (v > INT_MAX) return false;
  return true;
}

// planes = n * c with n within the batch limit, and c as large as possible up to kMaxChannels:
// described as N = planes, C = 1, cuDNN's pooling ran 3x slower than on the same planes as
// [128, 64] (bench_pool, H100). n == 0 where no such split was found.
constexpr int64_t kMaxChannels = 512;
std::pair<int64_t, int64_t> batch_split(int64_t planes) {
  for (int64_t c = std::min(planes, kMaxChannels); c >= 1; --c)
    if (planes % c == 0 && planes / c <= kMaxCudnnBatch) return {planes / c, c};
  const int64_t first = (planes + kMaxCudnnBatch - 1) / kMaxCudnnBatch;
  for (int64_t c = std::max(first, kMaxChannels + 1); c <= planes && c < first + kFactorSearch;
       ++c)
    if (planes % c == 0) return {planes / c, c};
  return {0, 0};
}

cudnnDataType_t data_type(DType dt) {
  return dt == kFloat16    ? CUDNN_DATA_HALF
         : dt == kBFloat16 ? CUDNN_DATA_BFLOAT16
                           : CUDNN_DATA_FLOAT;
}

}  // namespace

bool avg_pool2d_cudnn(const PoolArgs& a, const Tensor& out, const Tensor& input) {
  if (!takes(a, out, input) || !cudnn_aligned(input) || !cudnn_aligned(out)) return false;
  const auto [n, c] = batch_split(a.planes);
  if (n == 0) return false;
  const cudnnDataType_t type = data_type(input.dtype());
  const CudnnTensorDescriptor x(CUDNN_TENSOR_NCHW, type, n, c, a.height, a.width),
      y(CUDNN_TENSOR_NCHW, type, n, c, a.out_h, a.out_w);
  const PoolingDescriptor pool(a);
  for (cudnnStatus_t st : {x.status, y.status, pool.status}) {
    if (cudnn_declined(st)) return false;
    check_cudnn(st, "avg_pool2d: cuDNN descriptors");
  }
  // cuDNN's own output size must be ours, or its windows are not the ones we mean.
  int on = 0, oc = 0, oh = 0, ow = 0;
  cudnnStatus_t st = cudnnGetPooling2dForwardOutputDim(pool.d, x.d, &on, &oc, &oh, &ow);
  if (cudnn_declined(st)) return false;
  check_cudnn(st, "cudnnGetPooling2dForwardOutputDim");
  if (oh != a.out_h || ow != a.out_w) return false;
  const float one = 1, zero = 0;
  st = cudnnPoolingForward(cudnn_handle(input.device().index), pool.d, &one, x.d, input.data_ptr(),
                           &zero, y.d, out.data_ptr());
  if (cudnn_declined(st)) return false;
  check_cudnn(st, "cudnnPoolingForward");
  return true;
}

}  // namespace anvil::cuda

#pragma GCC diagnostic pop
