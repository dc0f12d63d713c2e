#include "anvil/data/sampler.h"

#include <numeric>
#include <utility>

#include "anvil/core/error.h"
#include "anvil/core/generator.h"

namespace anvil::data {

std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed, uint64_t epoch) {
  ANVIL_CHECK(n >= 0, ValueError, "shuffled_indices: expected n >= 0, got ", n);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t(0));
  // Fisher-Yates from the back; step k draws 64 bits from Philox block k of stream `epoch`.
  for (int64_t i = n - 1; i > 0; --i) {
    const auto r = philox4x32(uint64_t(i), epoch, seed);
    const uint64_t bits = (uint64_t(r[0]) << 32) | r[1];
    const int64_t j = int64_t(bits % uint64_t(i + 1));  // bias < n / 2^64
    std::swap(order[size_t(i)], order[size_t(j)]);
  }
  return order;
}

}  // namespace anvil::data
