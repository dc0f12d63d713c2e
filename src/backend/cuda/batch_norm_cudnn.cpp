// CUDA batch normalisation through cuDNN's batch-norm calls, with our kernels (batch_norm.cu)
// for the cases cuDNN does not take: float64 (the reference precision, where speed is not the
// point), empty tensors, sizes past cuDNN's int dims or its batch limit, views that do not
// start 16-byte aligned, the backward of inference mode (cuDNN's backward is the training
// formula) or without grad_input, and any call cuDNN answers NOT_SUPPORTED or BAD_PARAM.
//
// Layouts: [N, C, S] with S > 1 is described as NCHW (N, C, S, 1); S == 1 is a [M, C] matrix
// (also how a channels-last activation arrives, as [N*H*W, C]), described as NHWC
// (M = N' * H', N' within the batch limit) so that cuDNN may use its persistent NHWC kernels
// for 16-bit data. Deterministic mode keeps to CUDNN_BATCHNORM_SPATIAL.
//
// The op layer updates the running statistics from batch_var; cuDNN hands the unbiased batch
// variance out as a running variance averaged with factor 1 over zeros, so it is computed on
// the device in the same pass. Everything runs on current_stream() with workspaces from the
// caching allocator: nothing waits for the device, so the calls can be captured into graphs.
#include <climits>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <vector>

#include "anvil/core/determinism.h"
#include "backend/copy_kernels.h"
#include "backend/cuda/batch_norm.h"
#include "backend/cuda/cudnn_tensor.h"
#include "backend/cuda/handles.h"
#include "backend/cuda/stream.h"

// cuDNN 9 marks the batch-norm calls used here deprecated (in favour of its graph API) but still
// ships and supports them. Its headers warn only when CUDNN_WARN_DEPRECATED is defined; should
// a build define it, -Werror must not make these calls fatal.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace anvil::cuda {
namespace {
using backend::BatchNormArgs;

// How far past the smallest possible height the NHWC factorisation M = N' * H' looks.
constexpr int64_t kFactorSearch = 1024;

// How cuDNN sees the input: format and the four dims.
struct Layout {
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  int64_t n = 0, c = 0, h = 0, w = 1;
};

// The layout for cuDNN, or none where cuDNN cannot take the sizes.
std::optional<Layout> layout_of(const BatchNormArgs& a) {
  const int64_t N = a.batch, C = a.channels, S = a.spatial;
  if (N <= 0 || C <= 0 || S <= 0 || C > INT_MAX || S > INT_MAX) return std::nullopt;
  if (N * C * S > INT_MAX) return std::nullopt;  // cuDNN indexes with 32-bit ints
  if (S > 1) {
    if (N > kMaxCudnnBatch) return std::nullopt;
    return Layout{CUDNN_TENSOR_NCHW, N, C, S, 1};
  }
  // [M, C]: any M = N' * H' describes the same memory in NHWC; take the smallest H' that keeps
  // N' within the batch limit.
  const int64_t first = (N + kMaxCudnnBatch - 1) / kMaxCudnnBatch;
  for (int64_t h = first; h <= N && h < first + kFactorSearch; ++h)
    if (N % h == 0) return Layout{CUDNN_TENSOR_NHWC, N / h, C, h, 1};
  return std::nullopt;
}

cudnnDataType_t data_type(DType dt) {
  switch (dt) {
    case kFloat32: return CUDNN_DATA_FLOAT;
    case kFloat16: return CUDNN_DATA_HALF;
    case kBFloat16: return CUDNN_DATA_BFLOAT16;
    default:
      throw DTypeError(std::string("batch_norm: cuDNN path expected float32, float16 or "
                                   "bfloat16, got ") +
                       dtype_name(dt));
  }
}

// The modes to try, best first. PERSISTENT (fast NHWC kernels for 16-bit data) may reduce
// with atomics, so deterministic mode keeps to SPATIAL; NCHW keeps to SPATIAL as torch does,
// since PERSISTENT's fixed-point NCHW reduction narrows the range of values it handles.
std::vector<cudnnBatchNormMode_t> modes_for(const Layout& l, DType dt) {
  const bool half = dt == kFloat16 || dt == kBFloat16;
  if (l.format == CUDNN_TENSOR_NHWC && half && !are_deterministic_algorithms_enabled())
    return {CUDNN_BATCHNORM_SPATIAL_PERSISTENT, CUDNN_BATCHNORM_SPATIAL};
  return {CUDNN_BATCHNORM_SPATIAL};
}

// Everything one call needs: the descriptors of the data and of the [C] vectors, the handle,
// and the weight and bias (ones and zeros from the caching allocator when undefined).
struct Setup {
  int device;
  CudnnTensorDescriptor x;
  CudnnTensorDescriptor vec;  // [1, C, 1, 1] in float (the statistics dtype of float and 16-bit data)
  cudnnHandle_t handle;
  Tensor ones, zeros;
  static constexpr float one = 1, zero = 0;

  Setup(const Layout& l, DType dt, int dev)
      : device(dev),
        x(l.format, data_type(dt), l.n, l.c, l.h, l.w),
        vec(CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, l.c, 1, 1),
        handle(cudnn_handle(dev)) {}
  bool described() const {
    return x.status == CUDNN_STATUS_SUCCESS && vec.status == CUDNN_STATUS_SUCCESS;
  }

  const void* weight(const Tensor& w, int64_t C) {
    if (w.defined()) return w.data_ptr();
    if (!ones.defined()) {
      ones = Tensor::empty({C}, TensorOptions(kFloat32).device(Device(DeviceKind::CUDA, device)));
      backend::fill_kernels[ones.device()](ones, 1.0);
    }
    return ones.data_ptr();
  }
  const void* bias(const Tensor& b, int64_t C) {
    if (b.defined()) return b.data_ptr();
    if (!zeros.defined()) zeros = zeroed(C);
    return zeros.data_ptr();
  }
  // C floats set to zero on the stream.
  Tensor zeroed(int64_t C) const {
    Tensor t = Tensor::empty({C}, TensorOptions(kFloat32).device(Device(DeviceKind::CUDA, device)));
    ANVIL_CUDA_CHECK(cudaMemsetAsync(t.data_ptr(), 0, size_t(C) * sizeof(float), current_stream()));
    return t;
  }
};

// Where a training forward's "running" statistics go: with factor 1 cuDNN writes
// running_var = 1 * unbiased batch variance + 0 * running_var, the batch_var the op layer
// wants (zeroed first, so that whatever the memory held cannot leak in as NaN). cuDNN takes
// both running buffers or neither: the running mean goes to scratch. Both null without
// batch_var. (The op layer updates the real running statistics.)
class RunningOutputs {
 public:
  RunningOutputs(const Setup& s, const Tensor& batch_var, int64_t C) {
    if (!batch_var.defined()) return;
    ANVIL_CUDA_CHECK(cudaMemsetAsync(batch_var.data_ptr(), 0, size_t(C) * sizeof(float),
                                     current_stream()));
    mean_ = library_workspace(s.device, size_t(C) * sizeof(float));
    var_ = batch_var.data_ptr();
  }
  void* mean() const { return workspace_ptr(mean_); }
  void* var() const { return var_; }

 private:
  Tensor mean_;
  void* var_ = nullptr;
};

// One training forward in `mode`. The Ex call takes cuDNN's fastest kernels but may want a
// reserve buffer that its backward reads again; our kernel interface has no slot to carry one
// from forward to backward, so where a reserve is wanted the plain call (which needs none) runs.
cudnnStatus_t forward_training(Setup& s, cudnnBatchNormMode_t mode, const BatchNormArgs& a,
                               const Tensor& out, const Tensor& save_mean,
                               const Tensor& save_invstd, const Tensor& batch_var,
                               const Tensor& input, const Tensor& weight, const Tensor& bias) {
  const int64_t C = a.channels;
  const void* w = s.weight(weight, C);
  const void* b = s.bias(bias, C);
  const RunningOutputs running(s, batch_var, C);
  void* rm = running.mean();
  void* rv = running.var();
  size_t reserve = 0;
  cudnnStatus_t st = cudnnGetBatchNormalizationTrainingExReserveSpaceSize(
      s.handle, mode, CUDNN_BATCHNORM_OPS_BN, nullptr, s.x.d, &reserve);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if (reserve > 0)
    return cudnnBatchNormalizationForwardTraining(
        s.handle, mode, &Setup::one, &Setup::zero, s.x.d, input.data_ptr(), s.x.d,
        out.data_ptr(), s.vec.d, w, b, 1.0, rm, rv, a.eps, save_mean.data_ptr(),
        save_invstd.data_ptr());
  size_t bytes = 0;
  st = cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize(
      s.handle, mode, CUDNN_BATCHNORM_OPS_BN, s.x.d, s.x.d, s.x.d, s.vec.d, nullptr, &bytes);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  const Tensor ws = library_workspace(s.device, bytes);
  return cudnnBatchNormalizationForwardTrainingEx(
      s.handle, mode, CUDNN_BATCHNORM_OPS_BN, &Setup::one, &Setup::zero, s.x.d, input.data_ptr(),
      nullptr, nullptr, s.x.d, out.data_ptr(), s.vec.d, w, b, 1.0, rm, rv, a.eps,
      save_mean.data_ptr(), save_invstd.data_ptr(), nullptr, workspace_ptr(ws), bytes, nullptr,
      0);
}

// One training backward in `mode` (reserve as in forward_training). cuDNN writes all three
// gradients: those not asked for go to scratch.
cudnnStatus_t backward_training(Setup& s, cudnnBatchNormMode_t mode, const BatchNormArgs& a,
                                const Tensor& grad_input, const Tensor& grad_weight,
                                const Tensor& grad_bias, const Tensor& grad_out,
                                const Tensor& input, const Tensor& weight,
                                const Tensor& save_mean, const Tensor& save_invstd) {
  const int64_t C = a.channels;
  const void* w = s.weight(weight, C);
  Tensor scratch;
  if (!grad_weight.defined() || !grad_bias.defined())
    scratch = library_workspace(s.device, 2 * size_t(C) * sizeof(float));
  float* spare = static_cast<float*>(workspace_ptr(scratch));
  void* dw = grad_weight.defined() ? grad_weight.data_ptr() : spare;
  void* db = grad_bias.defined() ? grad_bias.data_ptr() : spare + C;
  size_t reserve = 0;
  cudnnStatus_t st = cudnnGetBatchNormalizationTrainingExReserveSpaceSize(
      s.handle, mode, CUDNN_BATCHNORM_OPS_BN, nullptr, s.x.d, &reserve);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  if (reserve > 0)
    return cudnnBatchNormalizationBackward(
        s.handle, mode, &Setup::one, &Setup::zero, &Setup::one, &Setup::zero, s.x.d,
        input.data_ptr(), s.x.d, grad_out.data_ptr(), s.x.d, grad_input.data_ptr(), s.vec.d, w,
        dw, db, a.eps, save_mean.data_ptr(), save_invstd.data_ptr());
  size_t bytes = 0;
  st = cudnnGetBatchNormalizationBackwardExWorkspaceSize(
      s.handle, mode, CUDNN_BATCHNORM_OPS_BN, s.x.d, s.x.d, s.x.d, nullptr, s.x.d, s.vec.d,
      nullptr, &bytes);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  const Tensor ws = library_workspace(s.device, bytes);
  return cudnnBatchNormalizationBackwardEx(
      s.handle, mode, CUDNN_BATCHNORM_OPS_BN, &Setup::one, &Setup::zero, &Setup::one,
      &Setup::zero, s.x.d, input.data_ptr(), nullptr, nullptr, s.x.d, grad_out.data_ptr(),
      nullptr, nullptr, s.x.d, grad_input.data_ptr(), s.vec.d, w, nullptr, dw, db, a.eps,
      save_mean.data_ptr(), save_invstd.data_ptr(), nullptr, workspace_ptr(ws), bytes, nullptr,
      0);
}

// Runs `call(mode)` for each mode in turn until one is taken. False when cuDNN declines them
// all; any other failure throws.
template <class Call>
bool first_taken(const std::vector<cudnnBatchNormMode_t>& modes, const char* op, Call call) {
  for (cudnnBatchNormMode_t mode : modes) {
    const cudnnStatus_t st = call(mode);
    if (st == CUDNN_STATUS_SUCCESS) return true;
    if (!cudnn_declined(st)) check_cudnn(st, op);
  }
  return false;
}

// The layout for cuDNN, or none where our kernels take the case (also for `data` that is not
// cudnn_aligned; undefined tensors are skipped).
std::optional<Layout> cudnn_layout(const BatchNormArgs& a, DType dt,
                                   std::initializer_list<const Tensor*> data) {
  if (dt == kFloat64 || a.eps < CUDNN_BN_MIN_EPSILON) return std::nullopt;
  for (const Tensor* t : data)
    if (t->defined() && !cudnn_aligned(*t)) return std::nullopt;
  return layout_of(a);
}

// True when cuDNN ran the forward.
bool forward_with_cudnn(const BatchNormArgs& a, const Tensor& out, const Tensor& save_mean,
                        const Tensor& save_invstd, const Tensor& batch_var, const Tensor& input,
                        const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                        const Tensor& running_var) {
  const std::optional<Layout> l = cudnn_layout(a, input.dtype(), {&input, &out});
  if (!l) return false;
  Setup s(*l, input.dtype(), input.device().index);
  if (!s.described()) return false;
  if (a.training)
    return first_taken(modes_for(*l, input.dtype()), "batch_norm", [&](cudnnBatchNormMode_t m) {
      return forward_training(s, m, a, out, save_mean, save_invstd, batch_var, input, weight,
                              bias);
    });
  const bool done =
      first_taken({CUDNN_BATCHNORM_SPATIAL}, "batch_norm", [&](cudnnBatchNormMode_t m) {
        return cudnnBatchNormalizationForwardInference(
            s.handle, m, &Setup::one, &Setup::zero, s.x.d, input.data_ptr(), s.x.d,
            out.data_ptr(), s.vec.d, s.weight(weight, a.channels), s.bias(bias, a.channels),
            running_mean.data_ptr(), running_var.data_ptr(), a.eps);
      });
  // cuDNN's inference call writes no statistics, and backward reads them.
  if (done) batch_norm_inference_stats(a, save_mean, save_invstd, running_mean, running_var);
  return done;
}

// True when cuDNN ran the backward.
bool backward_with_cudnn(const BatchNormArgs& a, const Tensor& grad_input,
                         const Tensor& grad_weight, const Tensor& grad_bias,
                         const Tensor& grad_out, const Tensor& input, const Tensor& weight,
                         const Tensor& save_mean, const Tensor& save_invstd) {
  if (!a.training || !grad_input.defined()) return false;
  const std::optional<Layout> l = cudnn_layout(a, input.dtype(), {&input, &grad_out, &grad_input});
  if (!l) return false;
  Setup s(*l, input.dtype(), input.device().index);
  if (!s.described()) return false;
  return first_taken(modes_for(*l, input.dtype()), "batch_norm_backward",
                     [&](cudnnBatchNormMode_t m) {
                       return backward_training(s, m, a, grad_input, grad_weight, grad_bias,
                                                grad_out, input, weight, save_mean, save_invstd);
                     });
}

void batch_norm_cuda(const BatchNormArgs& a, const Tensor& out, const Tensor& save_mean,
                     const Tensor& save_invstd, const Tensor& batch_var, const Tensor& input,
                     const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                     const Tensor& running_var) {
  DeviceGuard guard(input.device().index);
  if (!forward_with_cudnn(a, out, save_mean, save_invstd, batch_var, input, weight, bias,
                          running_mean, running_var))
    batch_norm_ours(a, out, save_mean, save_invstd, batch_var, input, weight, bias, running_mean,
                    running_var);
}

void batch_norm_backward_cuda(const BatchNormArgs& a, const Tensor& grad_input,
                              const Tensor& grad_weight, const Tensor& grad_bias,
                              const Tensor& grad_out, const Tensor& input, const Tensor& weight,
                              const Tensor& save_mean, const Tensor& save_invstd) {
  DeviceGuard guard(input.device().index);
  if (!backward_with_cudnn(a, grad_input, grad_weight, grad_bias, grad_out, input, weight,
                           save_mean, save_invstd))
    batch_norm_backward_ours(a, grad_input, grad_weight, grad_bias, grad_out, input, weight,
                             save_mean, save_invstd);
}

// ---- batch norm + ReLU (+ residual): cuDNN's fused NHWC training kernels --------------------
// ResNet's relu(bn(conv(x))) and relu(bn(conv(x)) + shortcut) as one pass each way: cuDNN has
// these as batch-norm "ops" (BN_ACTIVATION, BN_ADD_ACTIVATION) for NHWC 16-bit data in
// PERSISTENT mode, with a reserve buffer (the ReLU's mask) from forward to backward. Any other
// case is declined and the op layer composes batch_norm, add and relu.

struct ReluDescriptor {
  cudnnActivationDescriptor_t d = nullptr;
  ReluDescriptor() {
    ANVIL_CUDNN_CHECK(cudnnCreateActivationDescriptor(&d));
    ANVIL_CUDNN_CHECK(
        cudnnSetActivationDescriptor(d, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0));
  }
  ~ReluDescriptor() { cudnnDestroyActivationDescriptor(d); }
  ReluDescriptor(const ReluDescriptor&) = delete;
  ReluDescriptor& operator=(const ReluDescriptor&) = delete;
};

// The NHWC layout of a fused call, or none where it is declined: training only, 16-bit data,
// channels-last ([M, C]), and not in deterministic mode (PERSISTENT may reduce with atomics).
std::optional<Layout> fused_layout(const BatchNormArgs& a, DType dt,
                                   std::initializer_list<const Tensor*> data) {
  if (!a.training || a.spatial != 1 || (dt != kFloat16 && dt != kBFloat16) ||
      are_deterministic_algorithms_enabled())
    return std::nullopt;
  std::optional<Layout> l = cudnn_layout(a, dt, data);
  if (!l || l->format != CUDNN_TENSOR_NHWC) return std::nullopt;
  return l;
}

constexpr cudnnBatchNormMode_t kFusedMode = CUDNN_BATCHNORM_SPATIAL_PERSISTENT;

cudnnBatchNormOps_t fused_ops(bool residual) {
  return residual ? CUDNN_BATCHNORM_OPS_BN_ADD_ACTIVATION : CUDNN_BATCHNORM_OPS_BN_ACTIVATION;
}

bool batch_norm_relu_cuda(const BatchNormArgs& a, const Tensor& out, const Tensor& save_mean,
                          const Tensor& save_invstd, const Tensor& batch_var, Tensor& reserve,
                          const Tensor& input, const Tensor& weight, const Tensor& bias,
                          const Tensor& residual) {
  DeviceGuard guard(input.device().index);
  const std::optional<Layout> l = fused_layout(a, input.dtype(), {&input, &out, &residual});
  if (!l) return false;
  Setup s(*l, input.dtype(), input.device().index);
  if (!s.described()) return false;
  const ReluDescriptor relu;
  const cudnnBatchNormOps_t ops = fused_ops(residual.defined());
  const cudnnTensorDescriptor_t z = residual.defined() ? s.x.d : nullptr;
  size_t bytes = 0, reserve_bytes = 0;
  cudnnStatus_t st = cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize(
      s.handle, kFusedMode, ops, s.x.d, z, s.x.d, s.vec.d, relu.d, &bytes);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnGetBatchNormalizationTrainingExReserveSpaceSize(s.handle, kFusedMode, ops, relu.d,
                                                              s.x.d, &reserve_bytes);
  if (cudnn_declined(st)) return false;
  check_cudnn(st, "batch_norm_relu");
  const int64_t C = a.channels;
  const RunningOutputs running(s, batch_var, C);
  const Tensor ws = library_workspace(s.device, bytes);
  Tensor kept = library_workspace(s.device, reserve_bytes);
  st = cudnnBatchNormalizationForwardTrainingEx(
      s.handle, kFusedMode, ops, &Setup::one, &Setup::zero, s.x.d, input.data_ptr(), z,
      residual.defined() ? residual.data_ptr() : nullptr, s.x.d, out.data_ptr(), s.vec.d,
      s.weight(weight, C), s.bias(bias, C), 1.0, running.mean(), running.var(), a.eps,
      save_mean.data_ptr(), save_invstd.data_ptr(), relu.d, workspace_ptr(ws), bytes,
      workspace_ptr(kept), reserve_bytes);
  if (cudnn_declined(st)) return false;
  check_cudnn(st, "batch_norm_relu");
  reserve = kept;
  return true;
}

bool batch_norm_relu_backward_cuda(const BatchNormArgs& a, const Tensor& grad_input,
                                   const Tensor& grad_residual, const Tensor& grad_weight,
                                   const Tensor& grad_bias, const Tensor& grad_out,
                                   const Tensor& input, const Tensor& out, const Tensor& weight,
                                   const Tensor& bias, const Tensor& save_mean,
                                   const Tensor& save_invstd, const Tensor& reserve) {
  DeviceGuard guard(input.device().index);
  const std::optional<Layout> l = fused_layout(
      a, input.dtype(), {&input, &out, &grad_out, &grad_input, &grad_residual});
  if (!l) return false;
  Setup s(*l, input.dtype(), input.device().index);
  if (!s.described()) return false;
  const ReluDescriptor relu;
  const cudnnBatchNormOps_t ops = fused_ops(grad_residual.defined());
  const cudnnTensorDescriptor_t dz = grad_residual.defined() ? s.x.d : nullptr;
  const int64_t C = a.channels;
  Tensor scratch;
  if (!grad_weight.defined() || !grad_bias.defined())
    scratch = library_workspace(s.device, 2 * size_t(C) * sizeof(float));
  float* spare = static_cast<float*>(workspace_ptr(scratch));
  size_t bytes = 0;
  cudnnStatus_t st = cudnnGetBatchNormalizationBackwardExWorkspaceSize(
      s.handle, kFusedMode, ops, s.x.d, s.x.d, s.x.d, dz, s.x.d, s.vec.d, relu.d, &bytes);
  if (cudnn_declined(st)) return false;
  check_cudnn(st, "batch_norm_relu_backward");
  const Tensor ws = library_workspace(s.device, bytes);
  st = cudnnBatchNormalizationBackwardEx(
      s.handle, kFusedMode, ops, &Setup::one, &Setup::zero, &Setup::one, &Setup::zero, s.x.d,
      input.data_ptr(), s.x.d, out.data_ptr(), s.x.d, grad_out.data_ptr(), dz,
      grad_residual.defined() ? grad_residual.data_ptr() : nullptr, s.x.d,
      grad_input.data_ptr(), s.vec.d, s.weight(weight, C), s.bias(bias, C),
      grad_weight.defined() ? grad_weight.data_ptr() : spare,
      grad_bias.defined() ? grad_bias.data_ptr() : spare + C, a.eps, save_mean.data_ptr(),
      save_invstd.data_ptr(), relu.d, workspace_ptr(ws), bytes,
      workspace_ptr(reserve), size_t(reserve.defined() ? reserve.numel() : 0));
  if (cudnn_declined(st)) return false;
  check_cudnn(st, "batch_norm_relu_backward");
  return true;
}

ANVIL_REGISTER_KERNEL(backend::batch_norm_relu_kernels, CUDA, &batch_norm_relu_cuda);
ANVIL_REGISTER_KERNEL(backend::batch_norm_relu_backward_kernels, CUDA,
                      &batch_norm_relu_backward_cuda);
ANVIL_REGISTER_KERNEL(backend::batch_norm_kernels, CUDA, &batch_norm_cuda);
ANVIL_REGISTER_KERNEL(backend::batch_norm_backward_kernels, CUDA, &batch_norm_backward_cuda);

}  // namespace
}  // namespace anvil::cuda

#pragma GCC diagnostic pop
