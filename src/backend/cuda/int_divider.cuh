// Division of 32-bit indices by a divisor fixed at launch, as a multiply-high and a shift
// (Granlund and Montgomery's method, as in torch's IntDivider): a GPU has no integer divider,
// and a plain 32-bit division costs about twenty instructions, a 64-bit one several times that.
// Valid for 1 <= divisor <= INT32_MAX and 0 <= n <= INT32_MAX.
#pragma once
#include <cstdint>

namespace anvil::cuda {

class IntDivider {
 public:
  IntDivider() = default;
  explicit IntDivider(uint32_t divisor) : divisor_(divisor) {
    while (shift_ < 32 && (uint64_t(1) << shift_) < divisor) ++shift_;
    // magic = floor(2^32 * (2^shift - d) / d) + 1, which fits in 32 bits for d <= 2^31.
    const uint64_t one = 1;
    magic_ = uint32_t(((one << 32) * ((one << shift_) - divisor)) / divisor + 1);
  }
  __device__ uint32_t div(uint32_t n) const {
    const uint32_t t = __umulhi(n, magic_);
    return (t + n) >> shift_;  // t <= n < 2^31: the sum does not wrap
  }
  __device__ uint32_t divisor() const { return divisor_; }

 private:
  uint32_t divisor_ = 1, magic_ = 1, shift_ = 0;
};

}  // namespace anvil::cuda
