// What the dropout tests (test_dropout.cpp, test_cuda_dropout.cpp) hold the fused kernels to:
// the composition dropout once was, a bit-for-bit comparison, and inputs with the values
// where bit-identity is easy to lose.
#pragma once
#include <cstring>
#include <iterator>
#include <limits>
#include <vector>

#include "support/check.h"

namespace anvil::test {

inline const DType kDropoutDTypes[] = {kFloat32, kFloat64, kFloat16, kBFloat16};

// The composition, written out: five kernels and a float32 tensor of draws.
inline Tensor composed_dropout(const Tensor& x, double p, Generator& gen) {
  Tensor u = rand(x.shape(), TensorOptions(kFloat32).device(x.device()), &gen);
  return mul(x, mul(lt(u, 1.0 - p).to(x.dtype()), 1.0 / (1.0 - p)));
}

// Same dtype, shape and bytes (tensors on any device): the sign of zero and NaN payloads count.
inline ::testing::AssertionResult same_bits(const Tensor& actual, const Tensor& expected) {
  if (actual.dtype() != expected.dtype() || actual.shape() != expected.shape())
    return ::testing::AssertionFailure()
           << dtype_name(actual.dtype()) << " " << to_string(actual.shape()) << " vs "
           << dtype_name(expected.dtype()) << " " << to_string(expected.shape());
  Tensor a = actual.cpu().contiguous(), e = expected.cpu().contiguous();
  const auto* pa = static_cast<const unsigned char*>(a.data_ptr());
  const auto* pe = static_cast<const unsigned char*>(e.data_ptr());
  const size_t size = a.element_size();
  for (int64_t i = 0; i < a.numel(); ++i)
    if (std::memcmp(pa + size_t(i) * size, pe + size_t(i) * size, size) != 0)
      return ::testing::AssertionFailure()
             << "element " << i << ": " << a.to(kFloat64).to_vector<double>()[size_t(i)] << " vs "
             << e.to(kFloat64).to_vector<double>()[size_t(i)];
  return ::testing::AssertionSuccess();
}

// Values in [-2, 2) of `dtype` (on the CPU) with, when `specials`, every seventh one replaced
// by zeros of both signs, infinities and NaN (a dropped one is x * 0: NaN) or a value that
// overflows float16 once scaled. CPU and CUDA make different NaN payloads, so tests comparing
// the two backends leave the specials out.
inline Tensor dropout_input(const Shape& shape, uint64_t seed, DType dtype, bool specials) {
  std::vector<double> v = uniform(shape, seed, -2, 2).to_vector<double>();
  const double awkward[] = {0.0,
                            -0.0,
                            std::numeric_limits<double>::infinity(),
                            -std::numeric_limits<double>::infinity(),
                            std::numeric_limits<double>::quiet_NaN(),
                            65000.0};
  if (specials)
    for (size_t i = 0; i < v.size(); i += 7) v[i] = awkward[(i / 7) % std::size(awkward)];
  return tensor(v, shape, dtype);
}

}  // namespace anvil::test
