// The sample orders behind shuffling and random splits.
#pragma once
#include <cstdint>
#include <vector>

namespace anvil::data {

// A permutation of 0 .. n-1 that depends only on (seed, epoch): a Fisher-Yates shuffle driven
// by Philox-4x32 keyed by `seed` with `epoch` in the counter's high word, so every epoch of a
// seed has its own order, the same on every machine and in every run.
// Throws ValueError for n < 0.
std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed, uint64_t epoch = 0);

}  // namespace anvil::data
