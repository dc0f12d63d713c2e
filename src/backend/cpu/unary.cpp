// CPU element-wise unary math and activations, and the activations' gradients.
#include <cmath>
#include <type_traits>

#include "backend/cpu/loops.h"
#include "backend/unary_kernels.h"

namespace anvil::cpu {
namespace {
using backend::UnaryOp;

template <class C> bool is_nan(C x) {
  if constexpr (std::is_floating_point_v<C>) return std::isnan(x);
  else return false;
}

// sqrt(2 / pi) and the cubic coefficient of gelu's tanh approximation.
constexpr double kGeluBeta = 0.7978845608028654;
constexpr double kGeluKappa = 0.044715;
constexpr double kSqrtHalf = 0.7071067811865476;
constexpr double kInvSqrt2Pi = 0.3989422804014327;

// Floating math is reached only with floating T (the op layer converts integer inputs);
// integer T reaches Neg, Abs, Sign, Square and Relu.
template <class T>
void math(UnaryOp op, const Tensor& out, const Tensor& in, double alpha) {
  using C = compute_t<T>;
  const C a = C(alpha);
  auto run = [&](auto f) { unary_map<T, T>(out, in, [f](T x) { return T(f(C(x))); }); };
  switch (op) {
    case UnaryOp::Neg: run([](C x) { return C(-x); }); break;
    case UnaryOp::Exp: run([](C x) { return C(std::exp(x)); }); break;
    case UnaryOp::Log: run([](C x) { return C(std::log(x)); }); break;
    case UnaryOp::Sqrt: run([](C x) { return C(std::sqrt(x)); }); break;
    case UnaryOp::Rsqrt: run([](C x) { return C(C(1) / C(std::sqrt(x))); }); break;
    case UnaryOp::Abs:
      if constexpr (std::is_unsigned_v<C>) run([](C x) { return x; });
      else run([](C x) { return x < C(0) ? C(-x) : x; });
      break;
    case UnaryOp::Sign:
      if constexpr (std::is_unsigned_v<C>) run([](C x) { return C(x > C(0)); });
      else run([](C x) { return is_nan(x) ? x : C(int(x > C(0)) - int(x < C(0))); });
      break;
    case UnaryOp::Square: run([](C x) { return C(x * x); }); break;
    case UnaryOp::Sin: run([](C x) { return C(std::sin(x)); }); break;
    case UnaryOp::Cos: run([](C x) { return C(std::cos(x)); }); break;
    case UnaryOp::Relu: run([](C x) { return (x > C(0) || is_nan(x)) ? x : C(0); }); break;
    case UnaryOp::LeakyRelu: run([a](C x) { return x > C(0) ? x : C(x * a); }); break;
    case UnaryOp::Elu: run([a](C x) { return x > C(0) ? x : C(a * C(std::expm1(x))); }); break;
    case UnaryOp::Sigmoid: run([](C x) { return C(C(1) / (C(1) + C(std::exp(-x)))); }); break;
    case UnaryOp::Tanh: run([](C x) { return C(std::tanh(x)); }); break;
    case UnaryOp::Silu: run([](C x) { return C(x / (C(1) + C(std::exp(-x)))); }); break;
    case UnaryOp::GeluErf:
      run([](C x) { return C(x * C(0.5) * (C(1) + C(std::erf(x * C(kSqrtHalf))))); });
      break;
    case UnaryOp::GeluTanh:
      run([](C x) {
        C inner = C(kGeluBeta) * (x + C(kGeluKappa) * x * x * x);
        return C(C(0.5) * x * (C(1) + C(std::tanh(inner))));
      });
      break;
    default: throw Error("unary: not a math op");
  }
}

template <class T>
void predicate(UnaryOp op, const Tensor& out, const Tensor& in) {
  using C = compute_t<T>;
  switch (op) {
    case UnaryOp::LogicalNot: unary_map<bool, T>(out, in, [](T x) { return C(x) == C(0); }); break;
    case UnaryOp::IsNan: unary_map<bool, T>(out, in, [](T x) { return is_nan(C(x)); }); break;
    default: throw Error("unary: not a predicate");
  }
}

void unary_cpu(UnaryOp op, const Tensor& out, const Tensor& in, double alpha) {
  if (backend::is_predicate(op)) {
    ANVIL_DISPATCH_ALL(in.dtype(), "unary", [&] { predicate<scalar_t>(op, out, in); });
  } else {
    ANVIL_DISPATCH_NUMERIC(in.dtype(), "unary", [&] { math<scalar_t>(op, out, in, alpha); });
  }
}

template <class T>
void activation_backward(UnaryOp op, const Tensor& gin, const Tensor& gout, const Tensor& saved,
                         double alpha) {
  using C = compute_t<T>;
  const C a = C(alpha);
  // f(g, s): the gradient of one element from its output gradient and saved value.
  auto run = [&](auto f) {
    binary_map<T, T, T>(gin, gout, saved, [f](T g, T s) { return T(f(C(g), C(s))); });
  };
  switch (op) {
    case UnaryOp::Relu: run([](C g, C y) { return y > C(0) ? g : C(0); }); break;
    case UnaryOp::LeakyRelu: run([a](C g, C x) { return x > C(0) ? g : C(g * a); }); break;
    case UnaryOp::Elu:
      run([a](C g, C x) { return x > C(0) ? g : C(g * a * C(std::exp(x))); });
      break;
    case UnaryOp::Sigmoid: run([](C g, C y) { return C(g * y * (C(1) - y)); }); break;
    case UnaryOp::Tanh: run([](C g, C y) { return C(g * (C(1) - y * y)); }); break;
    case UnaryOp::Silu:
      run([](C g, C x) {
        C s = C(1) / (C(1) + C(std::exp(-x)));
        return C(g * s * (C(1) + x * (C(1) - s)));
      });
      break;
    case UnaryOp::GeluErf:
      run([](C g, C x) {
        C cdf = C(0.5) * (C(1) + C(std::erf(x * C(kSqrtHalf))));
        C pdf = C(kInvSqrt2Pi) * C(std::exp(C(-0.5) * x * x));
        return C(g * (cdf + x * pdf));
      });
      break;
    case UnaryOp::GeluTanh:
      run([](C g, C x) {
        C t = C(std::tanh(C(kGeluBeta) * (x + C(kGeluKappa) * x * x * x)));
        C left = C(0.5) * x, right = C(1) + t;
        C dright = left * (C(1) - t * t) * C(kGeluBeta) * (C(1) + C(3 * kGeluKappa) * x * x);
        return C(g * (C(0.5) * right + dright));
      });
      break;
    default: throw Error("unary_backward: not an activation");
  }
}

void unary_backward_cpu(UnaryOp op, const Tensor& gin, const Tensor& gout, const Tensor& saved,
                        double alpha) {
  ANVIL_DISPATCH_FLOAT(gin.dtype(), "unary_backward",
                       [&] { activation_backward<scalar_t>(op, gin, gout, saved, alpha); });
}

ANVIL_REGISTER_KERNEL(backend::unary_kernels, CPU, &unary_cpu);
ANVIL_REGISTER_KERNEL(backend::unary_backward_kernels, CPU, &unary_backward_cpu);

}  // namespace
}  // namespace anvil::cpu
