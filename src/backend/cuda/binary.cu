// CUDA element-wise binary ops (arithmetic, comparisons, logical), matching the CPU kernels:
// 16-bit floats compute in float, NaN propagates through maximum/minimum, integer division
// truncates, integer pow follows torch. A zero integer divisor gives 0 and is recorded on the
// device (error_flag.h): the CPU's ValueError is raised at the next synchronisation.
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

template <class C>
__device__ inline C arith(BinaryOp op, C x, C y) {
  switch (op) {
    case BinaryOp::Add: return x + y;
    case BinaryOp::Sub: return x - y;
    case BinaryOp::Mul: return x * y;
    case BinaryOp::Div: return C(x / y);  // integer divisors are checked by ArithDyn
    case BinaryOp::Pow:
      if constexpr (std::is_integral_v<C>) return int_pow(x, y);
      else if constexpr (std::is_same_v<C, float>) return powf(x, y);
      else return pow(x, y);
    case BinaryOp::Maximum: return (x != x || x > y) ? x : y;  // NaN propagates
    case BinaryOp::Minimum: return (x != x || x < y) ? x : y;
    default: return C(0);
  }
}

// One kernel per (float type, op); integer types switch on the op inside the loop.
template <class T, BinaryOp kOp>
struct ArithFixed {
  __device__ T operator()(T x, T y) const { return down<T>(arith(kOp, up(x), up(y))); }
};
// Integers; `site` is set for Div only.
template <class T>
struct ArithDyn {
  BinaryOp op;
  ErrorSite site;
  __device__ T operator()(T x, T y) const {
    if (op == BinaryOp::Div && y == T(0)) {
      record_error(site, ErrorCode::DivisionByZero, -1, 0, 0, 0);
      return T(0);
    }
    return T(arith(op, x, y));
  }
};
struct BoolOr {
  __device__ bool operator()(bool x, bool y) const { return x || y; }
};
struct BoolAnd {
  __device__ bool operator()(bool x, bool y) const { return x && y; }
};

template <class T>
struct Compare {
  BinaryOp op;
  __device__ bool operator()(T a, T b) const {
    const auto x = up(a), y = up(b);
    using C = decltype(x);
    switch (op) {
      case BinaryOp::Eq: return x == y;
      case BinaryOp::Ne: return x != y;
      case BinaryOp::Lt: return x < y;
      case BinaryOp::Le: return x <= y;
      case BinaryOp::Gt: return x > y;
      case BinaryOp::Ge: return x >= y;
      case BinaryOp::LogicalAnd: return x != C(0) && y != C(0);
      case BinaryOp::LogicalOr: return x != C(0) || y != C(0);
      default: return false;
    }
  }
};

template <class T>
void float_arith(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
#define ANVIL_ARITH_CASE(name) \
  case BinaryOp::name: map2<T, T, T>(out, a, b, ArithFixed<T, BinaryOp::name>{}); break;
    ANVIL_ARITH_CASE(Add)
    ANVIL_ARITH_CASE(Sub)
    ANVIL_ARITH_CASE(Mul)
    ANVIL_ARITH_CASE(Div)
    ANVIL_ARITH_CASE(Pow)
    ANVIL_ARITH_CASE(Maximum)
    ANVIL_ARITH_CASE(Minimum)
#undef ANVIL_ARITH_CASE
    default: throw Error("binary: not an arithmetic op");
  }
}

void arithmetic(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  ANVIL_DISPATCH_ALL(out.dtype(), "binary", [&] {
    using T = dev_t<scalar_t>;
    if constexpr (std::is_same_v<T, bool>) {
      // bool arithmetic is logic: + is or, * is and (as in PyTorch).
      switch (op) {
        case BinaryOp::Add:
        case BinaryOp::Maximum: map2<bool, bool, bool>(out, a, b, BoolOr{}); break;
        case BinaryOp::Mul:
        case BinaryOp::Minimum: map2<bool, bool, bool>(out, a, b, BoolAnd{}); break;
        default: throw DTypeError("binary: this arithmetic op is not defined for bool tensors");
      }
    } else if constexpr (std::is_integral_v<T>) {
      ErrorSite site;
      if (op == BinaryOp::Div) site = error_site(out.device().index, "div");
      map2<T, T, T>(out, a, b, ArithDyn<T>{op, site});
    } else {
      float_arith<T>(op, out, a, b);
    }
  });
}

void binary_cuda(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  DeviceGuard guard(out.device().index);
  if (backend::is_comparison(op)) {
    ANVIL_DISPATCH_ALL(a.dtype(), "compare", [&] {
      using T = dev_t<scalar_t>;
      map2<bool, T, T>(out, a, b, Compare<T>{op});
    });
  } else {
    arithmetic(op, out, a, b);
  }
}

ANVIL_REGISTER_KERNEL(backend::binary_kernels, CUDA, &binary_cuda);

}  // namespace
}  // namespace anvil::cuda
