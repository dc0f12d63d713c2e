// CUDA element-wise unary math and activations, and the activations' gradients, with the
// CPU kernels' formulas (16-bit floats compute in float); one kernel per (dtype, op), chosen on
// the host (launch.cuh's map1 and map2).
#include "backend/cuda/math.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/unary_kernels.h"

namespace anvil::cuda {
namespace {
using backend::UnaryOp;

constexpr double kGeluBeta = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kGeluKappa = 0.044715;
constexpr double kSqrtHalf = 0.7071067811865476;
constexpr double kInvSqrt2Pi = 0.3989422804014327;

template <class C>
__device__ inline C float_math(UnaryOp op, C x, C a) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return m_exp(x);
    case UnaryOp::Log: return m_log(x);
    case UnaryOp::Sqrt: return m_sqrt(x);
    case UnaryOp::Rsqrt: return C(1) / m_sqrt(x);
    case UnaryOp::Abs: return x < C(0) ? -x : x;
    case UnaryOp::Sign: return x != x ? x : C(int(x > C(0)) - int(x < C(0)));
    case UnaryOp::Square: return x * x;
    case UnaryOp::Sin: return m_sin(x);
    case UnaryOp::Cos: return m_cos(x);
    case UnaryOp::Relu: return (x > C(0) || x != x) ? x : C(0);
    case UnaryOp::LeakyRelu: return x > C(0) ? x : x * a;
    case UnaryOp::Elu: return x > C(0) ? x : a * m_expm1(x);
    case UnaryOp::Sigmoid: return C(1) / (C(1) + m_exp(-x));
    case UnaryOp::Tanh: return m_tanh(x);
    case UnaryOp::Silu: return x / (C(1) + m_exp(-x));
    case UnaryOp::GeluErf: return x * C(0.5) * (C(1) + m_erf(x * C(kSqrtHalf)));
    case UnaryOp::GeluTanh: {
      C inner = C(kGeluBeta) * (x + C(kGeluKappa) * x * x * x);
      return C(0.5) * x * (C(1) + m_tanh(inner));
    }
    default: return C(0);
  }
}

template <class T, UnaryOp kOp>
struct FloatMath {
  compute_t<T> alpha;
  __device__ T operator()(T x) const { return down<T>(float_math(kOp, up(x), alpha)); }
};

// Integer inputs reach Neg, Abs, Sign, Square and Relu only (the op layer converts the rest).
template <class T, UnaryOp kOp>
struct IntMath {
  __device__ T operator()(T x) const {
    if constexpr (kOp == UnaryOp::Neg) return T(-x);
    else if constexpr (kOp == UnaryOp::Abs) {
      if constexpr (std::is_unsigned_v<T>) return x;
      else return x < T(0) ? T(-x) : x;
    } else if constexpr (kOp == UnaryOp::Sign) {
      if constexpr (std::is_unsigned_v<T>) return T(x > T(0));
      else return T(int(x > T(0)) - int(x < T(0)));
    } else if constexpr (kOp == UnaryOp::Square) return T(x * x);
    else if constexpr (kOp == UnaryOp::Relu) return x > T(0) ? x : T(0);
    else static_assert(kOp == UnaryOp::Neg, "not an integer op");
  }
};

template <class T, UnaryOp kOp>
struct Predicate {
  __device__ bool operator()(T v) const {
    const auto x = up(v);
    if constexpr (kOp == UnaryOp::LogicalNot) return x == decltype(x)(0);
    else return x != x;  // IsNan: false for integers
  }
};

template <class T>
void float_unary(UnaryOp op, const Tensor& out, const Tensor& in, double alpha) {
  const compute_t<T> a = compute_t<T>(alpha);
  switch (op) {
#define ANVIL_UNARY_CASE(name) \
  case UnaryOp::name: map1<T, T>(out, in, FloatMath<T, UnaryOp::name>{a}); break;
    ANVIL_UNARY_CASE(Neg)
    ANVIL_UNARY_CASE(Exp)
    ANVIL_UNARY_CASE(Log)
    ANVIL_UNARY_CASE(Sqrt)
    ANVIL_UNARY_CASE(Rsqrt)
    ANVIL_UNARY_CASE(Abs)
    ANVIL_UNARY_CASE(Sign)
    ANVIL_UNARY_CASE(Square)
    ANVIL_UNARY_CASE(Sin)
    ANVIL_UNARY_CASE(Cos)
    ANVIL_UNARY_CASE(Relu)
    ANVIL_UNARY_CASE(LeakyRelu)
    ANVIL_UNARY_CASE(Elu)
    ANVIL_UNARY_CASE(Sigmoid)
    ANVIL_UNARY_CASE(Tanh)
    ANVIL_UNARY_CASE(Silu)
    ANVIL_UNARY_CASE(GeluErf)
    ANVIL_UNARY_CASE(GeluTanh)
#undef ANVIL_UNARY_CASE
    default: throw Error("unary: not a math op");
  }
}

template <class T>
void int_unary(UnaryOp op, const Tensor& out, const Tensor& in) {
  switch (op) {
#define ANVIL_INT_CASE(name) \
  case UnaryOp::name: map1<T, T>(out, in, IntMath<T, UnaryOp::name>{}); break;
    ANVIL_INT_CASE(Neg)
    ANVIL_INT_CASE(Abs)
    ANVIL_INT_CASE(Sign)
    ANVIL_INT_CASE(Square)
    ANVIL_INT_CASE(Relu)
#undef ANVIL_INT_CASE
    default:
      throw DTypeError(std::string("unary: this op needs a floating input, got ") +
                       dtype_name(in.dtype()));
  }
}

void unary_cuda(UnaryOp op, const Tensor& out, const Tensor& in, double alpha) {
  DeviceGuard guard(out.device().index);
  if (backend::is_predicate(op)) {
    ANVIL_DISPATCH_ALL(in.dtype(), "unary", [&] {
      using T = dev_t<scalar_t>;
      if (op == UnaryOp::LogicalNot) map1<bool, T>(out, in, Predicate<T, UnaryOp::LogicalNot>{});
      else map1<bool, T>(out, in, Predicate<T, UnaryOp::IsNan>{});
    });
    return;
  }
  ANVIL_DISPATCH_NUMERIC(in.dtype(), "unary", [&] {
    using T = dev_t<scalar_t>;
    if constexpr (std::is_integral_v<T>) int_unary<T>(op, out, in);
    else float_unary<T>(op, out, in, alpha);
  });
}

// f(g, s): the gradient of one element from its output gradient and saved value (the output
// for Relu, Sigmoid and Tanh, the input otherwise).
template <class C>
__device__ inline C activation_grad(UnaryOp op, C g, C s, C a) {
  switch (op) {
    case UnaryOp::Relu: return s > C(0) ? g : C(0);
    case UnaryOp::LeakyRelu: return s > C(0) ? g : g * a;
    case UnaryOp::Elu: return s > C(0) ? g : g * a * m_exp(s);
    case UnaryOp::Sigmoid: return g * s * (C(1) - s);
    case UnaryOp::Tanh: return g * (C(1) - s * s);
    case UnaryOp::Silu: {
      C sig = C(1) / (C(1) + m_exp(-s));
      return g * sig * (C(1) + s * (C(1) - sig));
    }
    case UnaryOp::GeluErf: {
      C cdf = C(0.5) * (C(1) + m_erf(s * C(kSqrtHalf)));
      C pdf = C(kInvSqrt2Pi) * m_exp(C(-0.5) * s * s);
      return g * (cdf + s * pdf);
    }
    case UnaryOp::GeluTanh: {
      C t = m_tanh(C(kGeluBeta) * (s + C(kGeluKappa) * s * s * s));
      C left = C(0.5) * s, right = C(1) + t;
      C dright = left * (C(1) - t * t) * C(kGeluBeta) * (C(1) + C(3 * kGeluKappa) * s * s);
      return g * (C(0.5) * right + dright);
    }
    default: return C(0);
  }
}

template <class T, UnaryOp kOp>
struct ActivationGrad {
  compute_t<T> alpha;
  __device__ T operator()(T g, T s) const {
    return down<T>(activation_grad(kOp, up(g), up(s), alpha));
  }
};

template <class T>
void float_backward(UnaryOp op, const Tensor& gin, const Tensor& gout, const Tensor& saved,
                    double alpha) {
  const compute_t<T> a = compute_t<T>(alpha);
  switch (op) {
#define ANVIL_GRAD_CASE(name) \
  case UnaryOp::name: map2<T, T, T>(gin, gout, saved, ActivationGrad<T, UnaryOp::name>{a}); break;
    ANVIL_GRAD_CASE(Relu)
    ANVIL_GRAD_CASE(LeakyRelu)
    ANVIL_GRAD_CASE(Elu)
    ANVIL_GRAD_CASE(Sigmoid)
    ANVIL_GRAD_CASE(Tanh)
    ANVIL_GRAD_CASE(Silu)
    ANVIL_GRAD_CASE(GeluErf)
    ANVIL_GRAD_CASE(GeluTanh)
#undef ANVIL_GRAD_CASE
    default: throw Error("unary_backward: not an activation");
  }
}

void unary_backward_cuda(UnaryOp op, const Tensor& gin, const Tensor& gout, const Tensor& saved,
                         double alpha) {
  DeviceGuard guard(gin.device().index);
  ANVIL_DISPATCH_FLOAT(gin.dtype(), "unary_backward", [&] {
    float_backward<dev_t<scalar_t>>(op, gin, gout, saved, alpha);
  });
}

ANVIL_REGISTER_KERNEL(backend::unary_kernels, CUDA, &unary_cuda);
ANVIL_REGISTER_KERNEL(backend::unary_backward_kernels, CUDA, &unary_backward_cuda);

}  // namespace
}  // namespace anvil::cuda
