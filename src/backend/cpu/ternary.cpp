// CPU element-wise ops of three operands (where, clamp).
#include "backend/cpu/loops.h"
#include "backend/ternary_kernels.h"

namespace anvil::cpu {
namespace {
using backend::TernaryOp;

template <class T>
void ternary(TernaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& c) {
  using C = compute_t<T>;
  switch (op) {
    case TernaryOp::Where:
      ternary_map<T, bool, T, T>(out, a, b, c, [](bool k, T x, T y) { return k ? x : y; });
      break;
    case TernaryOp::Clamp:
      // Comparisons with NaN are false, so a NaN input passes through.
      ternary_map<T, T, T, T>(out, a, b, c, [](T x, T lo, T hi) {
        C r = C(x) < C(lo) ? C(lo) : C(x);
        return T(r > C(hi) ? C(hi) : r);
      });
      break;
  }
}

void ternary_cpu(TernaryOp op, const Tensor& out, const Tensor& a, const Tensor& b,
                 const Tensor& c) {
  ANVIL_DISPATCH_ALL(out.dtype(), "ternary", [&] { ternary<scalar_t>(op, out, a, b, c); });
}

ANVIL_REGISTER_KERNEL(backend::ternary_kernels, CPU, &ternary_cpu);

}  // namespace
}  // namespace anvil::cpu
