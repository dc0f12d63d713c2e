// The vector walk of the CUDA element-wise kernels (backend/cuda/vec.cuh: a thread moves
// 16 / sizeof(T) elements with 16-byte loads and stores where every operand is dense, or a
// broadcast 0-dim scalar, and aligned): binary and unary ops, the activations' gradients,
// where and clamp, casts, and dropout with its gradient. Over the sizes where whole vectors
// and the partial last one meet (1, 7, 8, 9, ..., 4095, 4099, 1 << 20 and one more, a 2-d
// dense tensor, a 0-dim one), views whose data starts one element in (misaligned: the scalar
// walk must take them) or one whole vector in (aligned again: the vector walk), 0-dim
// operands on either side, and every dtype. Each CUDA result comes from poisoned memory and
// must match the CPU's, and match bit for bit what the scalar walk (forced by the
// benchmarking switch, backend/cuda/scalar_elementwise.h) gives. Skipped without a GPU.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "support/cuda_check.h"
#include "support/dropout_reference.h"

using namespace anvil;

// The benchmarking switch of the CUDA backend (backend/cuda/scalar_elementwise.h); weak, so
// that this file also links into builds without CUDA, where the tests skip.
namespace anvil::cuda {
[[gnu::weak]] void set_scalar_elementwise(bool on);
}

namespace {

using test::close;
using test::same_bits;
using test::Tol;

class CudaElementwiseVector : public test::CudaTest {};

// Holds the CUDA element-wise kernels to their scalar walks while it lives.
struct ScalarWalk {
  ScalarWalk() { cuda::set_scalar_elementwise(true); }
  ~ScalarWalk() { cuda::set_scalar_elementwise(false); }
  ScalarWalk(const ScalarWalk&) = delete;
  ScalarWalk& operator=(const ScalarWalk&) = delete;
};

const DType kAll[] = {kFloat32, kFloat64, kBFloat16, kFloat16, kInt32, kInt64, kUInt8, kBool};
const DType kFloats[] = {kFloat32, kFloat64, kBFloat16, kFloat16};

// Shapes around the vector widths (2, 4, 8 and 16 elements) and their partial last vectors.
std::vector<Shape> shapes() {
  const int64_t m = int64_t(1) << 20;
  return {{1}, {7}, {8}, {9}, {15}, {16}, {17}, {4095}, {4099}, {33, 65}, {m}, {m + 1}, {}};
}

// Where an operand's data starts in its buffer: at the start (aligned), one element in (not
// 16-byte aligned for any dtype: the scalar walk) or 16 bytes in (aligned again).
enum class Start { Aligned, OneIn, VectorIn };
const Start kStarts[] = {Start::Aligned, Start::OneIn, Start::VectorIn};

const char* name_of(Start s) {
  switch (s) {
    case Start::Aligned:
      return "aligned";
    case Start::OneIn:
      return "one element in";
    case Start::VectorIn:
      return "one vector in";
  }
  return "?";
}

int64_t offset_of(Start s, DType dt) {
  switch (s) {
    case Start::Aligned:
      return 0;
    case Start::OneIn:
      return 1;
    case Start::VectorIn:
      return int64_t(16 / dtype_size(dt));
  }
  return 0;
}

// The largest shapes run fewer starts, to hold the test's time down.
bool big(const Shape& s) { return !s.empty() && s[0] >= (int64_t(1) << 20); }

bool aligned16(const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; }

struct Twin {
  Tensor cpu, cuda;
};

// Values in [lo, hi) of `dt` (for bool: whether a draw lies in the upper half) in `shape`,
// starting `start` into a buffer on each device.
Twin make(const Shape& shape, Start start, uint64_t seed, DType dt, double lo, double hi) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const int64_t off = offset_of(start, dt);
  Tensor draw = test::uniform({n + off}, seed, lo, hi);
  Tensor base = dt == kBool ? gt(draw, (lo + hi) / 2) : draw.to(dt);
  Tensor cuda_base = base.cuda();
  return {base.narrow(0, off, n).reshape(shape), cuda_base.narrow(0, off, n).reshape(shape)};
}

// A 0-dim operand on both devices.
Twin scalar_of(uint64_t seed, DType dt, double lo, double hi) {
  return make({}, Start::Aligned, seed, dt, lo, hi);
}

Tol tol_for(DType dt) {
  switch (dt) {
    case kFloat32:
      return {1e-5, 1e-6};
    case kFloat64:
      return {1e-12, 1e-12};
    case kFloat16:
    case kBFloat16:
      return {1e-2, 1e-3};
    default:
      return {0, 0};
  }
}

// f on the CPU operands and on their CUDA twins from poisoned memory: close to the CPU's
// result (within `tol`, or exactly for integers and bools), and bit for bit what the scalar
// walk gives.
::testing::AssertionResult vector_matches(const test::Fn& f, const std::vector<Twin>& in, Tol tol) {
  try {
    std::vector<Tensor> cpu, gpu;
    for (const Twin& t : in) {
      cpu.push_back(t.cpu);
      gpu.push_back(t.cuda);
    }
    const Tensor expected = f(cpu);
    test::poison_device_cache();
    const Tensor vector = f(gpu);
    Tensor scalar;
    {
      ScalarWalk hold;
      test::poison_device_cache();
      scalar = f(gpu);
    }
    auto r = close(vector, expected, tol);
    if (!r) return r << " (CUDA against the CPU)";
    r = same_bits(vector, scalar);
    if (!r) return r << " (vector walk against the scalar walk)";
    return r;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw: " << e.what();
  }
}

std::string label(const Shape& s, Start start, DType dt) {
  return std::string(dtype_name(dt)) + " " + to_string(s) + " " + name_of(start);
}

// ---- the cases are what they say --------------------------------------------------------

TEST_F(CudaElementwiseVector, OperandsStartWhereTheCasesSay) {
  for (DType dt : kAll) {
    Twin a = make({64}, Start::Aligned, 1, dt, 0, 4), b = make({64}, Start::OneIn, 1, dt, 0, 4);
    Twin c = make({64}, Start::VectorIn, 1, dt, 0, 4);
    EXPECT_TRUE(aligned16(a.cuda)) << dtype_name(dt);
    EXPECT_FALSE(aligned16(b.cuda)) << dtype_name(dt);
    EXPECT_TRUE(aligned16(c.cuda)) << dtype_name(dt);
    EXPECT_TRUE(b.cuda.is_contiguous() && c.cuda.is_contiguous()) << dtype_name(dt);
  }
}

// ---- binary -------------------------------------------------------------------------------

struct BinaryCase {
  const char* name;
  Tensor (*f)(const Tensor&, const Tensor&);
  bool for_bool;  // defined on bool tensors
};

Tensor add2(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor sub2(const Tensor& a, const Tensor& b) { return sub(a, b); }

const BinaryCase kBinary[] = {{"add", add2, true},
                              {"sub", sub2, false},
                              {"mul", mul, true},
                              {"div", div, false},
                              {"maximum", maximum, true},
                              {"minimum", minimum, true},
                              {"eq", eq, true},
                              {"ne", ne, true},
                              {"lt", lt, true},
                              {"le", le, true},
                              {"gt", gt, true},
                              {"ge", ge, true},
                              {"logical_and", logical_and, true},
                              {"logical_or", logical_or, true}};

// Operand ranges: unsigned integers stay non-negative.
double lo_for(DType dt) { return dt == kUInt8 || dt == kBool ? 0 : -50; }

TEST_F(CudaElementwiseVector, BinaryOpsEverySizeStartAndDType) {
  for (DType dt : kAll)
    for (const Shape& s : shapes())
      for (Start start : kStarts) {
        if (big(s) && start == Start::VectorIn) continue;
        Twin a = make(s, start, 2, dt, lo_for(dt), 50), b = make(s, start, 3, dt, lo_for(dt), 50);
        // Only the first operand starts in: the other stays aligned.
        Twin c = make(s, Start::Aligned, 4, dt, lo_for(dt), 50);
        for (const BinaryCase& op : kBinary) {
          if (dt == kBool && !op.for_bool) continue;
          const Tol tol = tol_for(op.f(a.cpu, b.cpu).dtype());
          auto f = [&](const std::vector<Tensor>& t) { return op.f(t[0], t[1]); };
          EXPECT_TRUE(vector_matches(f, {a, b}, tol)) << op.name << " " << label(s, start, dt);
          if (start == Start::Aligned) continue;
          EXPECT_TRUE(vector_matches(f, {a, c}, tol))
              << op.name << " " << label(s, start, dt) << ", other aligned";
        }
      }
}

TEST_F(CudaElementwiseVector, BinaryOpsWithAZeroDimOperandOnEitherSide) {
  for (DType dt : kAll)
    for (const Shape& s : {Shape{9}, Shape{4099}, Shape{33, 65}, Shape{int64_t(1) << 20}})
      for (Start start : kStarts) {
        Twin a = make(s, start, 5, dt, lo_for(dt), 50), k = scalar_of(6, dt, lo_for(dt), 50);
        for (const BinaryCase& op : kBinary) {
          if (dt == kBool && !op.for_bool) continue;
          const Tol tol = tol_for(op.f(a.cpu, k.cpu).dtype());
          EXPECT_TRUE(vector_matches([&](const std::vector<Tensor>& t) { return op.f(t[0], t[1]); },
                                     {a, k}, tol))
              << op.name << " " << label(s, start, dt) << " with a 0-dim right operand";
          EXPECT_TRUE(vector_matches([&](const std::vector<Tensor>& t) { return op.f(t[0], t[1]); },
                                     {k, a}, tol))
              << op.name << " " << label(s, start, dt) << " with a 0-dim left operand";
        }
      }
  // A Scalar operand (wrapped as a 0-dim tensor of a dtype that may need converting).
  for (DType dt : kFloats) {
    Twin a = make({4099}, Start::Aligned, 7, dt, -2, 2);
    auto f = [](const std::vector<Tensor>& t) { return mul(sub(t[0], 2.5), 0.125); };
    EXPECT_TRUE(vector_matches(f, {a}, tol_for(dt))) << dtype_name(dt);
  }
}

TEST_F(CudaElementwiseVector, PowIntegerAndFloating) {
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kFloat16, kInt32, kInt64, kUInt8})
    for (const Shape& s : {Shape{7}, Shape{17}, Shape{4099}, Shape{(int64_t(1) << 20) + 1}})
      for (Start start : kStarts) {
        const bool floating = is_floating(dt);
        Twin a = make(s, start, 8, dt, floating ? 0.1 : (dt == kUInt8 ? 0 : -5), floating ? 3 : 5);
        Twin e = make(s, start, 9, dt, floating ? -3 : (dt == kUInt8 ? 0 : -2), floating ? 3 : 6);
        EXPECT_TRUE(vector_matches([](const std::vector<Tensor>& t) { return pow(t[0], t[1]); },
                                   {a, e}, tol_for(dt)))
            << label(s, start, dt);
      }
}

TEST_F(CudaElementwiseVector, InPlaceIntoViewsOfEveryStart) {
  for (DType dt : {kFloat32, kBFloat16, kFloat16, kInt32, kUInt8})
    for (const Shape& s : {Shape{9}, Shape{4099}, Shape{int64_t(1) << 20}})
      for (Start start : kStarts) {
        Twin a = make(s, Start::Aligned, 10, dt, lo_for(dt), 50);
        Twin b = make(s, Start::Aligned, 11, dt, 0, 50), k = scalar_of(12, dt, 0, 5);
        // a's values in a fresh buffer, `start` into it; then in place: += b, *= the 0-dim k.
        auto f = [&](const std::vector<Tensor>& t) {
          const int64_t off = offset_of(start, dt), n = t[0].numel();
          Tensor v = empty({n + off}, t[0].options()).narrow(0, off, n).view(s).copy_(t[0]);
          add_(v, t[1]);
          mul_(v, t[2]);
          return v;
        };
        EXPECT_TRUE(vector_matches(f, {a, b, k}, tol_for(dt))) << label(s, start, dt);
      }
}

// Views whose last dim is dense take the row walk: a slice of a wider tensor added into in
// place (autograd's slice gradients), a row broadcast (a bias), rows of a transposed outer
// pair, and one that does not qualify (last dim 12, not a whole number of 8 or 16 elements
// for the 16-bit and 8-bit dtypes; one element in).
TEST_F(CudaElementwiseVector, RowsOfStridedViews) {
  for (DType dt : {kFloat32, kBFloat16, kFloat16, kInt32, kUInt8})
    for (int64_t inner : {int64_t(64), int64_t(768), int64_t(12)})
      for (Start start : kStarts) {
        Twin wide = make({5, 3, 3 * inner}, start, 13, dt, lo_for(dt), 50);
        Twin part = make({5, 3, inner}, Start::Aligned, 14, dt, 0, 50);
        Twin row = make({inner}, Start::Aligned, 15, dt, 0, 50);
        auto slice_add = [&](const std::vector<Tensor>& t) {
          Tensor w = t[0].clone();
          Tensor mid = w.narrow(2, inner, inner);
          add_(mid, t[1]);
          return w;
        };
        auto broadcast = [&](const std::vector<Tensor>& t) {
          return mul(t[0].narrow(2, 0, inner), t[1]);
        };
        auto transposed = [&](const std::vector<Tensor>& t) {
          return maximum(t[0].narrow(2, 2 * inner, inner).transpose(0, 1),
                         t[1].transpose(0, 1));
        };
        const std::string what = label({5, 3, inner}, start, dt);
        EXPECT_TRUE(vector_matches(slice_add, {wide, part}, tol_for(dt))) << what << " slice";
        EXPECT_TRUE(vector_matches(broadcast, {wide, row}, tol_for(dt))) << what << " row";
        EXPECT_TRUE(vector_matches(transposed, {wide, part}, tol_for(dt))) << what << " transposed";
      }
}

// ---- unary and the activations' gradients -------------------------------------------------

using Unary = std::pair<const char*, std::function<Tensor(const Tensor&)>>;

std::vector<Unary> float_unaries() {
  return {{"neg", [](const Tensor& x) { return neg(x); }},
          {"exp", [](const Tensor& x) { return exp(x); }},
          {"log", [](const Tensor& x) { return log(x); }},
          {"sqrt", [](const Tensor& x) { return sqrt(x); }},
          {"rsqrt", [](const Tensor& x) { return rsqrt(x); }},
          {"abs", [](const Tensor& x) { return abs(x); }},
          {"sign", [](const Tensor& x) { return sign(x); }},
          {"square", [](const Tensor& x) { return square(x); }},
          {"sin", [](const Tensor& x) { return sin(x); }},
          {"cos", [](const Tensor& x) { return cos(x); }},
          {"relu", [](const Tensor& x) { return relu(x); }},
          {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.1); }},
          {"elu", [](const Tensor& x) { return elu(x, 0.7); }},
          {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
          {"tanh", [](const Tensor& x) { return tanh(x); }},
          {"silu", [](const Tensor& x) { return silu(x); }},
          {"gelu", [](const Tensor& x) { return gelu(x); }},
          {"gelu_tanh", [](const Tensor& x) { return gelu(x, "tanh"); }}};
}

std::vector<Unary> integer_unaries() {
  return {{"neg", [](const Tensor& x) { return neg(x); }},
          {"abs", [](const Tensor& x) { return abs(x); }},
          {"sign", [](const Tensor& x) { return sign(x); }},
          {"square", [](const Tensor& x) { return square(x); }},
          {"relu", [](const Tensor& x) { return relu(x); }}};
}

std::vector<Unary> predicates() {
  return {{"logical_not", [](const Tensor& x) { return logical_not(x); }},
          {"isnan", [](const Tensor& x) { return isnan(x); }}};
}

TEST_F(CudaElementwiseVector, UnaryOpsEverySizeStartAndDType) {
  for (DType dt : kAll)
    for (const Shape& s : shapes())
      for (Start start : kStarts) {
        if (big(s) && start == Start::VectorIn) continue;
        // log and sqrt of negatives: NaN on both devices.
        Twin x =
            make(s, start, 12, dt, is_floating(dt) ? -3 : lo_for(dt), is_floating(dt) ? 3 : 50);
        std::vector<Unary> ops = predicates();
        if (is_floating(dt)) {
          for (Unary& u : float_unaries()) ops.push_back(u);
        } else if (dt != kBool) {
          for (Unary& u : integer_unaries()) ops.push_back(u);
        }
        for (const Unary& u : ops) {
          const Tol tol = tol_for(is_floating(dt) ? dt : kInt64);
          EXPECT_TRUE(vector_matches([&](const std::vector<Tensor>& t) { return u.second(t[0]); },
                                     {x}, tol))
              << u.first << " " << label(s, start, dt);
        }
      }
}

// The gradient of f at x (a view `start` into its buffer) for output gradient g: the
// backward kernel reads g, and x or f's output.
TEST_F(CudaElementwiseVector, ActivationGradientsEverySizeAndStart) {
  std::vector<Unary> acts;
  for (Unary& u : float_unaries())
    for (const char* name :
         {"relu", "leaky_relu", "elu", "sigmoid", "tanh", "silu", "gelu", "gelu_tanh"})
      if (std::string(u.first) == name) acts.push_back(u);
  ASSERT_EQ(acts.size(), 8u);
  for (DType dt : kFloats)
    for (const Shape& s : shapes())
      for (Start start : kStarts) {
        if (big(s) && start == Start::VectorIn) continue;
        Twin x = make(s, start, 13, dt, -3, 3), g = make(s, Start::Aligned, 14, dt, -1, 1);
        Twin gm = make(s, Start::OneIn, 15, dt, -1, 1);
        for (const Unary& u : acts) {
          auto f = [&](const std::vector<Tensor>& t) {
            Tensor leaf = t[0].detach().requires_grad_();
            return autograd::grad({u.second(leaf)}, {leaf}, {t[1]})[0];
          };
          EXPECT_TRUE(vector_matches(f, {x, g}, tol_for(dt)))
              << u.first << " " << label(s, start, dt);
          if (start != Start::Aligned) continue;
          // The output gradient one element in: the backward kernel's other operand misaligned.
          EXPECT_TRUE(vector_matches(f, {x, gm}, tol_for(dt)))
              << u.first << " " << label(s, start, dt) << ", gradient one element in";
        }
      }
}

// ---- where, clamp -------------------------------------------------------------------------

TEST_F(CudaElementwiseVector, WhereAndClampEverySizeStartAndDType) {
  for (DType dt : kAll)
    for (const Shape& s : shapes())
      for (Start start : kStarts) {
        if (big(s) && start == Start::VectorIn) continue;
        Twin c = make(s, start, 16, kBool, 0, 1);
        Twin a = make(s, start, 17, dt, lo_for(dt), 50), b = make(s, start, 18, dt, lo_for(dt), 50);
        Twin k = scalar_of(19, dt, lo_for(dt), 50);
        auto pick = [](const std::vector<Tensor>& t) { return where(t[0], t[1], t[2]); };
        EXPECT_TRUE(vector_matches(pick, {c, a, b}, {0, 0})) << "where " << label(s, start, dt);
        EXPECT_TRUE(vector_matches(pick, {c, a, k}, {0, 0}))
            << "where, 0-dim other " << label(s, start, dt);
        if (dt == kBool) continue;
        auto bound = [](const std::vector<Tensor>& t) { return clamp(t[0], 5, 30); };
        EXPECT_TRUE(vector_matches(bound, {a}, {0, 0})) << "clamp " << label(s, start, dt);
      }
}

// ---- casts --------------------------------------------------------------------------------

TEST_F(CudaElementwiseVector, CastsBetweenEveryPairOfDTypes) {
  for (DType from : kAll)
    for (DType to : kAll)
      for (const Shape& s : shapes())
        for (Start start : kStarts) {
          if (big(s) && start == Start::VectorIn) continue;
          // Non-negative values with fractions: every conversion is defined and exact or
          // rounds the same way on both devices.
          Twin x = make(s, start, 20, from, 0, 100);
          EXPECT_TRUE(vector_matches([to](const std::vector<Tensor>& t) { return t[0].to(to); },
                                     {x}, {0, 0}))
              << dtype_name(from) << " to " << dtype_name(to) << " " << to_string(s) << " "
              << name_of(start);
        }
}

TEST_F(CudaElementwiseVector, CastsIntoDestinationsOfEveryStart) {
  for (DType from : {kFloat32, kBFloat16, kFloat16})
    for (DType to : {kFloat32, kBFloat16, kFloat16}) {
      if (from == to) continue;
      for (Start start : kStarts) {
        Twin x = make({4099}, Start::Aligned, 21, from, -4, 4);
        auto f = [&](const std::vector<Tensor>& t) {
          const int64_t off = offset_of(start, to), n = t[0].numel();
          return empty({n + off}, t[0].options().dtype(to)).narrow(0, off, n).copy_(t[0]);
        };
        EXPECT_TRUE(vector_matches(f, {x}, {0, 0}))
            << dtype_name(from) << " to " << dtype_name(to) << " " << name_of(start);
      }
    }
}

// Strided copies whose innermost dim is dense go by whole vectors (attention's head moves,
// [B, H, T, D] <-> [B, T, H, D]): inner sizes that are and are not whole vectors, starts that
// are and are not aligned, casts on the way.
TEST_F(CudaElementwiseVector, StridedCopiesWithADenseInnerDim) {
  for (DType from : {kFloat32, kBFloat16, kFloat16, kInt64})
    for (DType to : {kFloat32, kBFloat16})
      for (int64_t d : {64, 24, 60, 7})
        for (Start start : kStarts) {
          Twin x = make({2, 3, 5, d}, start, 22, from, 0, 100);
          auto f = [&](const std::vector<Tensor>& t) {
            return t[0].transpose(1, 2).to(to).contiguous();
          };
          auto g = [&](const std::vector<Tensor>& t) {  // into a strided destination
            Tensor out = empty({2, 5, 3, d}, t[0].options().dtype(to)).transpose(1, 2);
            return out.copy_(t[0]);
          };
          const std::string what = std::string(dtype_name(from)) + " to " + dtype_name(to) +
                                   " inner " + std::to_string(d) + " " + name_of(start);
          EXPECT_TRUE(vector_matches(f, {x}, {0, 0})) << what;
          EXPECT_TRUE(vector_matches(g, {x}, {0, 0})) << what << " (strided destination)";
        }
}

// ---- dropout ------------------------------------------------------------------------------

TEST_F(CudaElementwiseVector, DropoutEverySizeAndStart) {
  for (DType dt : test::kDropoutDTypes)
    for (const Shape& s : shapes())
      for (Start start : kStarts) {
        if (big(s) && start == Start::VectorIn) continue;
        // Finite values: CPU and CUDA make different NaN payloads for a dropped NaN.
        Twin x = make(s, start, 23, dt, -2, 2), g = make(s, Start::Aligned, 24, dt, -1, 1);
        auto f = [](const std::vector<Tensor>& t) {
          Generator gen(4242);
          Tensor leaf = t[0].detach().requires_grad_();
          Tensor first = dropout(leaf, 0.3, true, &gen);
          Tensor second = dropout(t[0], 0.3, true, &gen);  // later Philox counters
          Tensor grad = autograd::grad({first}, {leaf}, {t[1]})[0];
          return stack({first.reshape({-1}), second.reshape({-1}), grad.reshape({-1})});
        };
        EXPECT_TRUE(vector_matches(f, {x, g}, {0, 0})) << label(s, start, dt);
      }
  // Zeros of both signs, infinities and NaN: CUDA's two walks bit for bit (NaN payloads too).
  for (DType dt : test::kDropoutDTypes)
    for (const Shape& s : {Shape{4099}, Shape{(int64_t(1) << 20) + 3}}) {
      Tensor x = test::dropout_input(s, 25, dt, /*specials=*/true).cuda();
      Generator g1(99), g2(99);
      test::poison_device_cache();
      Tensor vector = dropout(x, 0.5, true, &g1), scalar;
      {
        ScalarWalk hold;
        test::poison_device_cache();
        scalar = dropout(x, 0.5, true, &g2);
      }
      EXPECT_TRUE(same_bits(vector, scalar)) << dtype_name(dt) << " " << to_string(s);
    }
}

}  // namespace
