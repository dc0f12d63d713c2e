// Helpers of the CUDA tests (test_cuda_*.cpp): a fixture that skips without a GPU, poisoning
// of the device memory the caching allocator hands out next, comparison of a CUDA result with
// the CPU reference, running a function on both devices with its gradients, and catching an
// error's message.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "support/check.h"

namespace anvil::test {

struct Tol {
  double rtol, atol;
};

// Fills blocks of several sizes (both pools of the caching allocator) with 0xFF bytes and
// frees them, so that memory handed out next holds garbage instead of zeros or an earlier
// result: an element a kernel forgets to write shows up as a mismatch. 0xFF is NaN in every
// floating dtype and -1 (or the maximum) in every integer dtype.
inline void poison_device_cache() {
  std::vector<Tensor> held;
  const TensorOptions bytes = TensorOptions(kUInt8).device(kCUDA);
  for (int64_t n : {int64_t(512), int64_t(64) << 10, int64_t(1) << 20, int64_t(4) << 20,
                    int64_t(32) << 20})
    for (int i = 0; i < 4; ++i) held.push_back(full({n}, 255, bytes));
}

// Base of the CUDA test fixtures: skips without a GPU and starts from a poisoned cache.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device";
    poison_device_cache();
  }
};

// A CUDA result against the CPU's: same shape and dtype, exactly equal elements match (so do
// equal infinities, which all_close alone refuses), the rest must be all_close; NaN matches NaN.
inline ::testing::AssertionResult close(const Tensor& cuda, const Tensor& cpu, Tol tol,
                                        const std::string& what = "result") {
  if (!cuda.defined() || !cpu.defined())
    return ::testing::AssertionFailure() << what << ": undefined";
  if (!cuda.device().is_cuda()) return ::testing::AssertionFailure() << what << ": not on CUDA";
  if (cuda.dtype() != cpu.dtype())
    return ::testing::AssertionFailure() << what << ": dtype " << dtype_name(cuda.dtype())
                                         << " vs " << dtype_name(cpu.dtype());
  if (cuda.shape() != cpu.shape())
    return ::testing::AssertionFailure() << what << ": shape " << to_string(cuda.shape())
                                         << " vs " << to_string(cpu.shape());
  Tensor a = cuda.cpu().to(kFloat64), e = cpu.to(kFloat64), zero = zeros({}, kFloat64);
  Tensor same_value = eq(a, e);
  auto r = all_close(where(same_value, zero, a), where(same_value, zero, e), tol.rtol, tol.atol);
  if (!r) return ::testing::AssertionFailure() << what << ": " << r.message();
  return r;
}

namespace detail {
inline ::testing::AssertionResult same_on_cuda_impl(const Fn& f, const std::vector<Tensor>& inputs,
                                                    Tol tol, const std::vector<Tol>& grad_tol) {
  const bool grads = inputs[0].is_floating_point();
  std::vector<Tensor> cpu, gpu;
  for (const Tensor& x : inputs) {
    cpu.push_back(x.defined() ? x.contiguous().detach() : Tensor());
    gpu.push_back(x.defined() ? x.cuda().detach() : Tensor());
    if (grads && x.defined()) {
      cpu.back().requires_grad_();
      gpu.back().requires_grad_();
    }
  }
  Tensor out_cpu = f(cpu);
  poison_device_cache();  // the outputs and gradients come from poisoned memory
  Tensor out_gpu = f(gpu);
  auto r = close(out_gpu, out_cpu, tol, "output");
  if (!r || !grads) return r;
  Tensor g = uniform(out_cpu.shape(), 99, -1, 1).to(out_cpu.dtype());
  out_cpu.backward(g);
  Tensor g_gpu = g.cuda();
  poison_device_cache();
  out_gpu.backward(g_gpu);
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (!inputs[i].defined()) continue;
    r = close(gpu[i].grad(), cpu[i].grad(), grad_tol[std::min(i, grad_tol.size() - 1)],
              "grad of input " + std::to_string(i));
    if (!r) return r;
  }
  return r;
}
}  // namespace detail

// f on CPU leaves made from `inputs` (undefined ones stay undefined) and on their CUDA copies:
// the outputs, and (for floating dtypes) the gradients of sum(out * g) for a random g, must
// agree (grad_tol[i] for input i, the last one for the rest). An exception is reported as a
// failure, so that one case cannot hide the others.
inline ::testing::AssertionResult same_on_cuda(const Fn& f, const std::vector<Tensor>& inputs,
                                               Tol tol, const std::vector<Tol>& grad_tol) {
  try {
    return detail::same_on_cuda_impl(f, inputs, tol, grad_tol);
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw: " << e.what();
  }
}
inline ::testing::AssertionResult same_on_cuda(const Fn& f, const std::vector<Tensor>& inputs,
                                               Tol tol, Tol grad_tol) {
  return same_on_cuda(f, inputs, tol, std::vector<Tol>{grad_tol});
}

// uniform(lo, hi) values of `shape` as dtype, on the CPU.
inline Tensor rnd(const Shape& shape, uint64_t seed, DType dt, double lo = -1, double hi = 1) {
  return uniform(shape, seed, lo, hi).to(dt);
}

// The message of the E that f throws, or a marker when it throws something else or nothing.
template <class E>
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "did not throw";
}

}  // namespace anvil::test
