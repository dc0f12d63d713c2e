// Single- or double-precision device math chosen by argument type: m_exp(float) calls expf,
// m_exp(double) calls exp. Kernels compute 16-bit types in float, so these two suffice.
#pragma once
#include <type_traits>

namespace anvil::cuda {

#define ANVIL_MATH(name)                                       \
  template <class C> __device__ inline C m_##name(C x) {       \
    if constexpr (std::is_same_v<C, float>) return name##f(x); \
    else return name(x);                                       \
  }
ANVIL_MATH(exp)
ANVIL_MATH(log)
ANVIL_MATH(sqrt)
ANVIL_MATH(sin)
ANVIL_MATH(cos)
ANVIL_MATH(tanh)
ANVIL_MATH(expm1)
ANVIL_MATH(erf)
#undef ANVIL_MATH

template <class C> __device__ inline C m_fmax(C a, C b) {
  if constexpr (std::is_same_v<C, float>) return fmaxf(a, b);
  else return fmax(a, b);
}

}  // namespace anvil::cuda
