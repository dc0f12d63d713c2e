// CPU element-wise binary ops (arithmetic, comparisons, logical).
#include <atomic>
#include <cmath>
#include <type_traits>

#include "backend/binary_kernels.h"
#include "backend/cpu/loops.h"

namespace anvil::cpu {
namespace {
using backend::BinaryOp;

// bool arithmetic is logic: + is or, * is and (as in PyTorch).
void bool_arithmetic(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
    case BinaryOp::Add:
    case BinaryOp::Maximum: binary_map<bool, bool, bool>(out, a, b, [](bool x, bool y) { return x || y; }); break;
    case BinaryOp::Mul:
    case BinaryOp::Minimum: binary_map<bool, bool, bool>(out, a, b, [](bool x, bool y) { return x && y; }); break;
    default: throw DTypeError("binary: this arithmetic op is not defined for bool tensors");
  }
}

template <class T>
void arithmetic(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  using C = compute_t<T>;
  if constexpr (std::is_same_v<T, bool>) {
    bool_arithmetic(op, out, a, b);
    return;
  } else {
  auto run = [&](auto f) {
    binary_map<T, T, T>(out, a, b, [f](T x, T y) { return T(f(C(x), C(y))); });
  };
  switch (op) {
    case BinaryOp::Add: run([](C x, C y) { return x + y; }); break;
    case BinaryOp::Sub: run([](C x, C y) { return x - y; }); break;
    case BinaryOp::Mul: run([](C x, C y) { return x * y; }); break;
    case BinaryOp::Div:
      if constexpr (std::is_integral_v<C>) {
        // Integer division truncates towards zero and refuses zero divisors (checked first:
        // nothing may throw inside a parallel region).
        std::atomic<bool> zero{false};
        auto plan = make_plan<1>({&b});
        run_plan(plan, [&](char** p, const int64_t* s, int64_t n) {
          for (int64_t i = 0; i < n; ++i)
            if (*reinterpret_cast<const T*>(p[0] + i * s[0]) == T(0)) zero = true;
        });
        if (zero) throw ValueError("div: integer division by zero");
        run([](C x, C y) { return C(x / y); });
      } else {
        run([](C x, C y) { return x / y; });
      }
      break;
    case BinaryOp::Pow:
      run([](C x, C y) {
        if constexpr (std::is_integral_v<C>) {
          if constexpr (std::is_signed_v<C>) {
            // As torch: only 1 and -1 have integer reciprocals; the rest round to 0.
            if (y < 0) return x == 1 ? C(1) : x == -1 ? C(y % 2 == 0 ? 1 : -1) : C(0);
          }
          // By squaring, in unsigned arithmetic so that overflow wraps instead of being UB.
          using U = std::make_unsigned_t<C>;
          U r = 1, b = U(x);
          for (C e = y; e > 0; e /= 2, b = U(b * b))
            if (e % 2) r = U(r * b);
          return C(r);
        } else {
          return C(std::pow(x, y));
        }
      });
      break;
    case BinaryOp::Maximum:
      run([](C x, C y) { return (x != x || x > y) ? x : y; });  // NaN propagates
      break;
    case BinaryOp::Minimum:
      run([](C x, C y) { return (x != x || x < y) ? x : y; });
      break;
    default:
      throw Error("binary: not an arithmetic op");
  }
  }
}

template <class T>
void compare(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  using C = compute_t<T>;
  auto run = [&](auto f) {
    binary_map<bool, T, T>(out, a, b, [f](T x, T y) { return bool(f(C(x), C(y))); });
  };
  switch (op) {
    case BinaryOp::Eq: run([](C x, C y) { return x == y; }); break;
    case BinaryOp::Ne: run([](C x, C y) { return x != y; }); break;
    case BinaryOp::Lt: run([](C x, C y) { return x < y; }); break;
    case BinaryOp::Le: run([](C x, C y) { return x <= y; }); break;
    case BinaryOp::Gt: run([](C x, C y) { return x > y; }); break;
    case BinaryOp::Ge: run([](C x, C y) { return x >= y; }); break;
    case BinaryOp::LogicalAnd: run([](C x, C y) { return x != C(0) && y != C(0); }); break;
    case BinaryOp::LogicalOr: run([](C x, C y) { return x != C(0) || y != C(0); }); break;
    default: throw Error("binary: not a comparison");
  }
}

void binary_cpu(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  if (backend::is_comparison(op)) {
    ANVIL_DISPATCH_ALL(a.dtype(), "compare", [&] { compare<scalar_t>(op, out, a, b); });
  } else {
    ANVIL_DISPATCH_ALL(out.dtype(), "binary", [&] { arithmetic<scalar_t>(op, out, a, b); });
  }
}

ANVIL_REGISTER_KERNEL(backend::binary_kernels, CPU, &binary_cpu);

}  // namespace
}  // namespace anvil::cpu
