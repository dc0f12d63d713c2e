// CPU evenly spaced fills (see backend/sequence_kernels.h).
#include "backend/cpu/loops.h"
#include "backend/sequence_kernels.h"

namespace anvil::cpu {
namespace {

template <class T>
void fill_sequence(const backend::SequenceArgs& a, const Tensor& out) {
  T* y = out.data<T>();
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n; ++i) {
    const double v = a.from_end && i >= n / 2 ? a.end - a.step * double(n - 1 - i)
                                              : a.start + a.step * double(i);
    y[i] = T(compute_t<T>(v));
  }
}

void sequence_cpu(const backend::SequenceArgs& a, const Tensor& out) {
  ANVIL_DISPATCH_NUMERIC(out.dtype(), "sequence", [&] { fill_sequence<scalar_t>(a, out); });
}

ANVIL_REGISTER_KERNEL(backend::sequence_kernels, CPU, &sequence_cpu);

}  // namespace
}  // namespace anvil::cpu
