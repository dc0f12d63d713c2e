// CUDA element-wise binary ops (arithmetic, comparisons, logical), matching the CPU kernels,
// one kernel per (dtype, op) chosen on the host (launch.cuh's map2): 16-bit floats compute in
// float, NaN propagates through maximum/minimum, integer division truncates, integer pow
// follows torch. A zero integer divisor gives 0 and is recorded on the device (error_flag.h):
// the CPU's ValueError is raised at the next synchronisation.
#include "backend/binary_kernels.h"
#include "backend/cuda/error_flag.h"
#include "backend/cuda/launch.cuh"

namespace anvil::cuda {
namespace {
using backend::BinaryOp;

template <class C>
__device__ inline C int_pow(C x, C y) {
  if constexpr (std::is_signed_v<C>) {
    // As torch: only 1 and -1 have integer reciprocals; the rest round to 0.
    if (y < 0) return x == 1 ? C(1) : x == -1 ? C(y % 2 == 0 ? 1 : -1) : C(0);
  }
  using U = std::make_unsigned_t<C>;  // overflow wraps instead of being UB
  U r = 1, b = U(x);
  for (C e = y; e > 0; e /= 2, b = U(b * b))
    if (e % 2) r = U(r * b);
  return C(r);
}

// The arithmetic of one op on compute values (integer divisors are checked by IntDiv).
template <BinaryOp kOp, class C>
__device__ inline C arith(C x, C y) {
  if constexpr (kOp == BinaryOp::Add) return C(x + y);
  else if constexpr (kOp == BinaryOp::Sub) return C(x - y);
  else if constexpr (kOp == BinaryOp::Mul) return C(x * y);
  else if constexpr (kOp == BinaryOp::Div) return C(x / y);
  else if constexpr (kOp == BinaryOp::Pow) {
    if constexpr (std::is_integral_v<C>) return int_pow(x, y);
    else if constexpr (std::is_same_v<C, float>) return powf(x, y);
    else return pow(x, y);
  } else if constexpr (kOp == BinaryOp::Maximum) return (x != x || x > y) ? x : y;  // NaN wins
  else if constexpr (kOp == BinaryOp::Minimum) return (x != x || x < y) ? x : y;
  else static_assert(kOp == BinaryOp::Add, "not an arithmetic op");
}

// One kernel per (dtype, op), integers included: 16-bit floats compute in float, the rest in
// their own type.
template <class T, BinaryOp kOp>
struct Arith {
  __device__ T operator()(T x, T y) const { return down<T>(arith<kOp>(up(x), up(y))); }
};
// Integer division: a zero divisor gives 0 and is recorded at `site`.
template <class T>
struct IntDiv {
  ErrorSite site;
  __device__ T operator()(T x, T y) const {
    if (y == T(0)) {
      record_error(site, ErrorCode::DivisionByZero, -1, 0, 0, 0);
      return T(0);
    }
    return T(x / y);
  }
};
struct BoolOr {
  __device__ bool operator()(bool x, bool y) const { return x || y; }
};
struct BoolAnd {
  __device__ bool operator()(bool x, bool y) const { return x && y; }
};

// Eq, Ne, Lt, Le and the logical ops; Gt and Ge run as Lt and Le with swapped operands.
template <class T, BinaryOp kOp>
struct Compare {
  __device__ bool operator()(T a, T b) const {
    const auto x = up(a), y = up(b);
    using C = decltype(x);
    if constexpr (kOp == BinaryOp::Eq) return x == y;
    else if constexpr (kOp == BinaryOp::Ne) return x != y;
    else if constexpr (kOp == BinaryOp::Lt) return x < y;
    else if constexpr (kOp == BinaryOp::Le) return x <= y;
    else if constexpr (kOp == BinaryOp::LogicalAnd) return x != C(0) && y != C(0);
    else if constexpr (kOp == BinaryOp::LogicalOr) return x != C(0) || y != C(0);
    else static_assert(kOp == BinaryOp::Eq, "not a comparison this kernel runs");
  }
};

template <class T>
void arithmetic(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
#define ANVIL_ARITH_CASE(name) \
  case BinaryOp::name: map2<T, T, T>(out, a, b, Arith<T, BinaryOp::name>{}); break;
    ANVIL_ARITH_CASE(Add)
    ANVIL_ARITH_CASE(Sub)
    ANVIL_ARITH_CASE(Mul)
    ANVIL_ARITH_CASE(Pow)
    ANVIL_ARITH_CASE(Maximum)
    ANVIL_ARITH_CASE(Minimum)
#undef ANVIL_ARITH_CASE
    case BinaryOp::Div:
      if constexpr (std::is_integral_v<T>)
        map2<T, T, T>(out, a, b, IntDiv<T>{error_site(out.device().index, "div")});
      else
        map2<T, T, T>(out, a, b, Arith<T, BinaryOp::Div>{});
      break;
    default: throw Error("binary: not an arithmetic op");
  }
}

// bool arithmetic is logic: + is or, * is and (as in PyTorch).
void bool_arithmetic(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
    case BinaryOp::Add:
    case BinaryOp::Maximum: map2<bool, bool, bool>(out, a, b, BoolOr{}); break;
    case BinaryOp::Mul:
    case BinaryOp::Minimum: map2<bool, bool, bool>(out, a, b, BoolAnd{}); break;
    default: throw DTypeError("binary: this arithmetic op is not defined for bool tensors");
  }
}

template <class T>
void compare(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
#define ANVIL_COMPARE_CASE(name, kernel, x, y) \
  case BinaryOp::name: map2<bool, T, T>(out, x, y, Compare<T, BinaryOp::kernel>{}); break;
    ANVIL_COMPARE_CASE(Eq, Eq, a, b)
    ANVIL_COMPARE_CASE(Ne, Ne, a, b)
    ANVIL_COMPARE_CASE(Lt, Lt, a, b)
    ANVIL_COMPARE_CASE(Le, Le, a, b)
    ANVIL_COMPARE_CASE(Gt, Lt, b, a)  // a > b is b < a, NaN included
    ANVIL_COMPARE_CASE(Ge, Le, b, a)
    ANVIL_COMPARE_CASE(LogicalAnd, LogicalAnd, a, b)
    ANVIL_COMPARE_CASE(LogicalOr, LogicalOr, a, b)
#undef ANVIL_COMPARE_CASE
    default: throw Error("binary: not a comparison");
  }
}

void binary_cuda(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  DeviceGuard guard(out.device().index);
  if (backend::is_comparison(op)) {
    ANVIL_DISPATCH_ALL(a.dtype(), "compare", [&] { compare<dev_t<scalar_t>>(op, out, a, b); });
    return;
  }
  ANVIL_DISPATCH_ALL(out.dtype(), "binary", [&] {
    using T = dev_t<scalar_t>;
    if constexpr (std::is_same_v<T, bool>) bool_arithmetic(op, out, a, b);
    else arithmetic<T>(op, out, a, b);
  });
}

ANVIL_REGISTER_KERNEL(backend::binary_kernels, CUDA, &binary_cuda);

}  // namespace
}  // namespace anvil::cuda
