// The CUDA sweep (tests/test_cuda_sweep_*.cpp): every public op that reaches a backend kernel,
// for every dtype, run on the CPU (the reference) and on CUDA with the same inputs, outputs and
// input gradients compared with a tolerance set by the op's kind of arithmetic and the dtype.
//
// A case names the dtypes its op computes. For each of the eight dtypes one test runs: a
// dtype the op computes must give the CPU's values on CUDA; any other must raise DTypeError on
// both devices (so a kernel missing on CUDA, or one CUDA has and the CPU refuses, fails).
// Each test is named <op>_<dtype>, in two suites: CpuReference runs the CPU half alone (the
// dtypes the reference computes and refuses), which needs no GPU and runs in CI as a `cpu`
// test; MatchesCpu runs both halves and compares them, and skips without a GPU.
#pragma once
#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "support/cuda_check.h"

namespace anvil::test::sweep {

using Tensors = std::vector<Tensor>;

inline const std::vector<DType> kAllDTypes = {kFloat32, kFloat64, kFloat16, kBFloat16,
                                              kInt32,   kInt64,   kUInt8,   kBool};
inline const std::vector<DType> kFloats = {kFloat32, kFloat64, kFloat16, kBFloat16};
inline const std::vector<DType> kNumeric = {kFloat32, kFloat64, kFloat16, kBFloat16,
                                            kInt32,   kInt64,   kUInt8};
inline const std::vector<DType> kIndexDTypes = {kInt32, kInt64};

// The arithmetic behind an op's results, which sets how far CUDA may stray from the CPU.
enum class Precision {
  Exact,         // moves, picks, casts, compares, counter-based random draws
  Elementwise,   // one rounding per element (or a short chain of them)
  Accumulating,  // sums over many elements: reductions, norms, products through cuBLASLt
  Library,       // cuDNN convolutions: its heuristics may pick Winograd or FFT algorithms
  Approximate,   // cuBLASLt's GELU epilogue (16-bit): its tanh is an approximate instruction
  Chained,       // a formula of several ops, each rounding to the dtype (pow's gradients)
};

// rtol and atol by precision and dtype. TF32 stays off (set_allow_tf32's default), so
// float32 products in cuBLASLt are exact float32 arithmetic summed in another order
// (Accumulating); cuDNN may still choose a transform-based float32 algorithm (Library, 1e-3).
// Integer and bool results must be exact. The 16-bit bounds hold one rounding apart (one unit
// in the last place is under 2^-10 = 9.8e-4 relative for float16, 2^-7 for bfloat16), also
// where one device rounds a product before adding the bias and the other after; the GELU
// epilogue's approximate tanh, amplified where 1 + tanh(u) is near 0, takes the bound
// test_cuda_linear_act.cpp established for it.
// Chained: a gradient composed of several ops, each rounding its result to the 16-bit dtype
// (pow's g * (e * x^(e-1)) is pow, mul, mul). Both devices compute the same formula, but a
// transcendental's float result may differ by a float ulp between them (glibc's powf against
// CUDA's), which moves the first 16-bit rounding across a midpoint where the value lies near
// one; every later rounding carries that unit and may add its own. The bound is one unit in
// the last place per step of such a chain: 4 ulps, relative 4 * 2^-10 for float16 and
// 4 * 2^-7 for bfloat16. Wider dtypes keep the Elementwise bounds.
inline Tol tolerance(Precision p, DType dt) {
  if (!is_floating(dt) || p == Precision::Exact) return {0, 0};
  if (p == Precision::Approximate && (dt == kFloat16 || dt == kBFloat16)) return {1e-2, 4e-2};
  if (p == Precision::Chained) {
    if (dt == kFloat16) return {4e-3, 1e-3};
    if (dt == kBFloat16) return {3.2e-2, 1e-2};
    p = Precision::Elementwise;
  }
  switch (dt) {
    case kFloat64: return {1e-12, 1e-12};
    case kFloat16: return {1e-3, 1e-3};
    case kBFloat16: return {1e-2, 1e-2};
    default: break;
  }
  switch (p) {
    case Precision::Elementwise: return {1e-5, 1e-6};
    case Precision::Library: return {1e-3, 1e-4};
    default: return {1e-4, 1e-5};  // Accumulating; Approximate (float32 takes our gelu kernel)
  }
}

// ---- inputs --------------------------------------------------------------------------------

struct Span {
  double lo = -1, hi = 1;
};

// Uniform integers in [lo, hi) as dtype dt (uint8 from max(lo, 0); bool: whether nonzero).
inline Tensor integers(const Shape& shape, uint64_t seed, DType dt, int64_t lo, int64_t hi) {
  if (dt == kUInt8) lo = std::max<int64_t>(lo, 0);
  Tensor k = add(uniform(shape, seed, 0, double(hi - lo)).to(kInt64), Scalar(lo));
  return k.to(dt);
}

// Random values of dtype dt on the CPU: floating dtypes uniform in `floats`, integer dtypes
// uniform integers in [ints.lo, ints.hi) (uint8 from max(lo, 0)), bool true or false alike.
inline Tensor values(const Shape& shape, uint64_t seed, DType dt, Span floats = {},
                     Span ints = {-100, 100}) {
  if (dt == kBool) return gt(uniform(shape, seed), 0.0);
  if (is_floating(dt)) return uniform(shape, seed, floats.lo, floats.hi).to(dt);
  return integers(shape, seed, dt, int64_t(ints.lo), int64_t(ints.hi));
}

// Multiples of 1/8 in [-1, 1]: exact in every floating dtype, and so are sums of a few dozen
// of them, whatever order a device adds them in (scatters, index_add and pooling backwards).
inline Tensor on_eighths(const Shape& shape, uint64_t seed, DType dt) {
  return div(integers(shape, seed, kFloat64, -8, 9), 8.0).to(dt);
}

// ---- cases ---------------------------------------------------------------------------------

// What a case's body runs on: its inputs (leaves) on one device, and the swept dtype.
struct Args {
  Tensors in;
  Device device = kCPU;
  DType dtype = kFloat32;
  TensorOptions options() const { return TensorOptions(dtype).device(device); }
};

using Inputs = std::function<Tensors(DType dtype)>;  // made on the CPU
using Body = std::function<Tensors(const Args& args)>;

struct Case {
  std::string op{};             // the test name's first part: letters, digits and '_'
  std::vector<DType> dtypes{};  // the dtypes the op computes
  bool others_refused = true;   // the other dtypes raise DTypeError (else not swept)
  Inputs inputs = [](DType) { return Tensors{}; };
  Body body{};  // the outputs; gradients flow back from the first one
  Precision precision = Precision::Elementwise;
  std::optional<Precision> grad_precision = std::nullopt;  // default: `precision`
  std::vector<size_t> grads{};  // inputs whose gradients are compared (floating dtypes)
};

// Bodies that apply f to the first one, two or three inputs.
inline Body unary_op(std::function<Tensor(const Tensor&)> f) {
  return [f](const Args& a) -> Tensors { return {f(a.in[0])}; };
}
inline Body binary_op(std::function<Tensor(const Tensor&, const Tensor&)> f) {
  return [f](const Args& a) -> Tensors { return {f(a.in[0], a.in[1])}; };
}
inline Body ternary_op(std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)> f) {
  return [f](const Args& a) -> Tensors { return {f(a.in[0], a.in[1], a.in[2])}; };
}

struct Param {
  std::shared_ptr<const Case> c;
  DType dtype = kFloat32;
};

inline bool computes(const Case& c, DType dt) {
  return std::find(c.dtypes.begin(), c.dtypes.end(), dt) != c.dtypes.end();
}

// One test per case and dtype: the dtypes it computes, then (where refused) the others.
inline std::vector<Param> params(const std::vector<Case>& cases) {
  std::vector<Param> out;
  for (const Case& c : cases) {
    auto shared = std::make_shared<const Case>(c);
    for (DType dt : kAllDTypes)
      if (computes(c, dt) || c.others_refused) out.push_back({shared, dt});
  }
  return out;
}

inline std::string name(const ::testing::TestParamInfo<Param>& info) {
  return info.param.c->op + "_" + dtype_name(info.param.dtype);
}

inline void PrintTo(const Param& p, std::ostream* os) {
  *os << p.c->op << " on " << dtype_name(p.dtype);
}

// ---- running a case ------------------------------------------------------------------------

namespace detail {

struct Attempt {
  Tensors leaves, outputs;
  std::string refusal;  // the DTypeError's message; empty when the op ran
};

// The case on copies of `inputs` on `device`; the device's cache is poisoned after the
// copies, so the outputs land on garbage.
inline Attempt attempt(const Case& c, const Tensors& inputs, Device device, DType dt) {
  Attempt a;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor leaf = inputs[i].defined() ? inputs[i].to(device).clone().detach() : Tensor();
    const bool wanted = std::find(c.grads.begin(), c.grads.end(), i) != c.grads.end();
    if (wanted && leaf.defined() && leaf.is_floating_point()) leaf.requires_grad_();
    a.leaves.push_back(leaf);
  }
  if (device.is_cuda()) poison_device_cache();
  try {
    a.outputs = c.body({a.leaves, device, dt});
  } catch (const DTypeError& e) {
    a.refusal = e.what();
  }
  return a;
}

inline bool any_requires_grad(const Tensors& ts) {
  return std::any_of(ts.begin(), ts.end(),
                     [](const Tensor& t) { return t.defined() && t.requires_grad(); });
}

// The CPU half of a case: the reference computes the dtypes the case names (with gradients
// where its inputs need them) and refuses the others with DTypeError. Returns the attempt.
inline Attempt reference(const Case& c, DType dt, const Tensors& inputs) {
  Attempt ref = attempt(c, inputs, kCPU, dt);
  if (computes(c, dt)) {
    EXPECT_TRUE(ref.refusal.empty()) << "the CPU refuses " << c.op << " for " << dtype_name(dt)
                                     << ", which the case expects it to compute: " << ref.refusal;
    EXPECT_FALSE(ref.refusal.empty() && ref.outputs.empty()) << "the case returns no outputs";
    if (ref.refusal.empty() && !ref.outputs.empty() && any_requires_grad(ref.leaves)) {
      EXPECT_TRUE(ref.outputs[0].requires_grad()) << "inputs need gradients, the output has none";
    }
  } else {
    EXPECT_FALSE(ref.refusal.empty()) << "the CPU computes " << c.op << " for " << dtype_name(dt)
                                      << ": add the dtype to the case";
  }
  return ref;
}

}  // namespace detail

// The `CpuReference` test of one case and dtype: the CPU half alone, which runs without a GPU.
inline void check_reference(const Param& p) {
  detail::reference(*p.c, p.dtype, p.c->inputs(p.dtype));
}

// The `MatchesCpu` test of one case and dtype (see the top of this file): skipped without a
// GPU; else the CPU half, then CUDA against it.
inline void check(const Param& p) {
  if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device (CpuReference runs the CPU half)";
  const Case& c = *p.c;
  const DType dt = p.dtype;
  const bool expected = computes(c, dt);
  const Tensors inputs = c.inputs(dt);
  detail::Attempt ref = detail::reference(c, dt, inputs);
  if (::testing::Test::HasFailure()) return;

  detail::Attempt dev = detail::attempt(c, inputs, kCUDA, dt);
  if (!expected) {
    EXPECT_FALSE(dev.refusal.empty())
        << "CUDA computes what the CPU refuses with DTypeError: " << ref.refusal;
    return;
  }
  ASSERT_TRUE(dev.refusal.empty()) << "CUDA refuses what the CPU computes: " << dev.refusal;
  ASSERT_EQ(dev.outputs.size(), ref.outputs.size());
  for (size_t i = 0; i < ref.outputs.size(); ++i)
    EXPECT_TRUE(close(dev.outputs[i], ref.outputs[i],
                      tolerance(c.precision, ref.outputs[i].dtype()),
                      "output " + std::to_string(i)));

  const Tensor& y = ref.outputs[0];
  ASSERT_EQ(dev.outputs[0].requires_grad(), y.requires_grad());
  if (!y.requires_grad()) return;
  const Tensor g = on_eighths(y.shape(), 99, y.dtype());
  y.backward(g);
  poison_device_cache();  // the gradients land on garbage too
  dev.outputs[0].backward(g.cuda());
  const Precision gp = c.grad_precision.value_or(c.precision);
  for (size_t i = 0; i < ref.leaves.size(); ++i) {
    const Tensor& want = ref.leaves[i];
    if (!want.defined() || !want.requires_grad()) continue;
    ASSERT_TRUE(want.grad().defined()) << "the CPU gives input " << i << " no gradient";
    EXPECT_TRUE(close(dev.leaves[i].grad(), want.grad(), tolerance(gp, want.grad().dtype()),
                      "gradient of input " + std::to_string(i)));
  }
}

}  // namespace anvil::test::sweep
