// How ops apply autocast at their entry (see anvil/amp/autocast.h for the op lists):
//
//   Tensor mm(const Tensor& a, const Tensor& b) {
//     if (amp::detail::autocast_active({&a, &b}))
//       return amp::detail::run_autocast(amp::detail::CastPolicy::LowerPrecision, {a, b},
//                                        [](const auto& t) { return mm(t[0], t[1]); });
//     ...
//
// The op calls itself again with its inputs cast; autocast is off for ops running inside it,
// so the second call (and anything it calls) goes straight through, as PyTorch's autocast
// dispatch key excludes itself.
#pragma once
#include <array>
#include <cstddef>
#include <initializer_list>

#include "anvil/amp/autocast.h"
#include "anvil/core/tensor.h"

namespace anvil::amp::detail {

enum class CastPolicy {
  LowerPrecision,  // float32 and 16-bit inputs to the autocast dtype
  Float32,         // 16-bit inputs to float32
  Promote,         // floating inputs to the widest of them (and of the autocast dtype)
};

// True when autocast is on for the device kind of the first defined tensor and no autocast
// op is running on this thread (a thread-local read or two when autocast is off).
bool autocast_active(std::initializer_list<const Tensor*> inputs);

// Keeps ops from autocasting for its lifetime (set while an autocast op runs).
class AutocastExclude {
 public:
  AutocastExclude();
  ~AutocastExclude();
  AutocastExclude(const AutocastExclude&) = delete;
  AutocastExclude& operator=(const AutocastExclude&) = delete;
};

// `t` cast per `policy` (widest: the Promote target). Undefined, non-floating and float64
// tensors pass through, as in PyTorch.
Tensor autocast_cast(const Tensor& t, CastPolicy policy, DType widest = kFloat32);

// Casts `inputs` per `policy`, then runs op(std::array<Tensor, N>) with autocast excluded.
template <size_t N, class Op>
auto run_autocast(CastPolicy policy, const Tensor (&inputs)[N], Op&& op) {
  // Promote's target, as PyTorch's: the autocast dtype promoted with every floating input
  // but float64 ones (which stay as they are).
  DType widest = kFloat32;
  bool first = true;
  for (size_t i = 0; policy == CastPolicy::Promote && i < N; ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined() || !t.is_floating_point() || t.dtype() == kFloat64) continue;
    widest = promote_types(first ? autocast_dtype(t.device().kind) : widest, t.dtype());
    first = false;
  }
  std::array<Tensor, N> cast;
  for (size_t i = 0; i < N; ++i) cast[i] = autocast_cast(inputs[i], policy, widest);
  AutocastExclude exclude;
  return op(cast);
}

}  // namespace anvil::amp::detail
