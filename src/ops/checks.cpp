#include "ops/checks.h"

#include "anvil/autograd/grad_mode.h"

namespace anvil::ops {

void check_defined(const Tensor& t, const char* op, const char* arg) {
  ANVIL_CHECK(t.defined(), ValueError, op, ": expected a defined tensor for '", arg,
              "', got an undefined one");
}

void check_same_device(const std::vector<Tensor>& ts, const char* op) {
  const Tensor* first = nullptr;
  for (const Tensor& t : ts) {
    if (!t.defined()) continue;
    if (!first) {
      first = &t;
      continue;
    }
    ANVIL_CHECK(t.device() == first->device(), DeviceError, op,
                ": expected all tensors on one device, got ", first->device().str(), " and ",
                t.device().str());
  }
}

void check_floating(const Tensor& t, const char* op, const char* arg) {
  ANVIL_CHECK(is_floating(t.dtype()), DTypeError, op, ": expected a floating-point '", arg,
              "' (float16, bfloat16, float32 or float64), got ", dtype_name(t.dtype()));
}

void check_index(const Tensor& t, const char* op, const char* arg) {
  ANVIL_CHECK(t.dtype() == kInt64 || t.dtype() == kInt32, DTypeError, op, ": expected '", arg,
              "' of dtype int64 or int32, got ", dtype_name(t.dtype()));
}

void check_dim(const Tensor& t, int64_t n, const char* op, const char* arg, int64_t max_n) {
  if (max_n < 0) max_n = n;
  ANVIL_CHECK(t.dim() >= n && t.dim() <= max_n, ShapeError, op, ": expected '", arg, "' with ",
              n == max_n ? std::to_string(n) : std::to_string(n) + " to " + std::to_string(max_n),
              " dims, got shape ", to_string(t.shape()));
}

void check_inplace(const Tensor& t, const char* op) {
  ANVIL_CHECK(!(grad_enabled() && t.requires_grad()), AutogradError, op,
              ": in-place changes to a tensor that requires grad are not recorded; do them under "
              "NoGradGuard (as optimizers do) or on a detach()ed tensor");
}

}  // namespace anvil::ops
