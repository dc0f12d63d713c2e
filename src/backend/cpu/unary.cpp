// CPU element-wise unary math and activations.
#include <cmath>

#include "backend/cpu/loops.h"
#include "backend/unary_kernels.h"

namespace anvil::cpu {
namespace {
using backend::UnaryOp;

template <class T>
void math(UnaryOp op, const Tensor& out, const Tensor& in, double /*alpha*/) {
  using C = compute_t<T>;
  auto run = [&](auto f) { unary_map<T, T>(out, in, [f](T x) { return T(f(C(x))); }); };
  switch (op) {
    case UnaryOp::Neg: run([](C x) { return C(-x); }); break;
    case UnaryOp::Sqrt: run([](C x) { return C(std::sqrt(x)); }); break;
    default: throw Error("unary: op not implemented on cpu");
  }
}

void unary_cpu(UnaryOp op, const Tensor& out, const Tensor& in, double alpha) {
  ANVIL_DISPATCH_NUMERIC(in.dtype(), "unary", [&] { math<scalar_t>(op, out, in, alpha); });
}

ANVIL_REGISTER_KERNEL(backend::unary_kernels, CPU, &unary_cpu);

}  // namespace
}  // namespace anvil::cpu
