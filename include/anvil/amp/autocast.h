// Autocast: ops pick their own precision, as torch.autocast.
//
//   {
//     amp::autocast ac(DeviceKind::CUDA, kBFloat16);  // or kFloat16 (then use a GradScaler)
//     Tensor loss = cross_entropy(model(x), y);        // linear/conv in bf16, the loss in f32
//   }
//   loss.backward();                                   // gradients reach float32 parameters
//
// While autocast is on for a device kind (per thread), an op whose tensors live on a device
// of that kind casts its floating inputs on entry, following PyTorch's CUDA lists:
//   - lower precision (the autocast dtype): matmul, mm, bmm, linear, conv2d,
//     scaled_dot_product_attention. Their float32 and 16-bit inputs (weights, bias and a
//     floating attention mask too) are cast; float64 ones are left alone.
//   - float32: softmax, log_softmax, layer_norm, rms_norm, exp, log, rsqrt, pow, sum, and the
//     losses (cross_entropy, nll_loss, soft_cross_entropy, mse_loss, l1_loss, huber_loss,
//     smooth_l1_loss, binary_cross_entropy, binary_cross_entropy_with_logits). Their 16-bit
//     inputs are cast.
//   - widest input type: scatter_add (cat and the element-wise ops promote anyway, so
//     add(bf16, f32) gives f32).
//   - everything else runs in its inputs' dtype (relu, batch_norm, pooling, ... in bf16 when
//     fed bf16, as in PyTorch).
// Ops that an autocast op calls internally are not cast again (PyTorch excludes them too).
// The casts are recorded by autograd (Tensor::to), so gradients flow back to float32 master
// weights and arrive there in float32. Autocast applies the same way under NoGradGuard.
//
// Differences from PyTorch: one op list for both device kinds (PyTorch's CPU list is narrower:
// it leaves softmax, log, pow and sum in bfloat16); binary_cross_entropy runs in float32 where
// PyTorch's CUDA autocast refuses it; and casts are not cached (PyTorch caches the cast of each
// leaf weight inside one autocast region, saving a cast per reuse of a weight).
//
// Call backward() outside the region, as PyTorch recommends: backward ops run in the dtypes
// their forward ops chose either way.
#pragma once
#include <optional>

#include "anvil/core/device.h"
#include "anvil/core/dtype.h"

namespace anvil::amp {

// Whether autocast is on for `device` on the calling thread (off by default).
bool is_autocast_enabled(DeviceKind device);
// The dtype lower-precision ops use on `device`: float16 for CUDA and bfloat16 for the CPU
// until set, as in PyTorch.
DType autocast_dtype(DeviceKind device);
// Setters behind `autocast` (torch.set_autocast_enabled / set_autocast_dtype). Throws
// DTypeError for a dtype other than float16 and bfloat16.
void set_autocast_enabled(DeviceKind device, bool enabled);
void set_autocast_dtype(DeviceKind device, DType dtype);

// Turns autocast on (or off, with enabled = false) for `device` for its lifetime and restores
// the previous state, dtype included, when it ends, so regions nest. Without a dtype it keeps
// the current autocast_dtype(device). Throws DTypeError for a dtype other than float16 and
// bfloat16.
class autocast {
 public:
  explicit autocast(DeviceKind device, std::optional<DType> dtype = std::nullopt,
                    bool enabled = true);
  ~autocast();
  autocast(const autocast&) = delete;
  autocast& operator=(const autocast&) = delete;

 private:
  DeviceKind device_;
  bool prev_enabled_;
  DType prev_dtype_;
};

}  // namespace anvil::amp
