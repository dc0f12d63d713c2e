// Size2: a (height, width) argument given as one int or as a pair, like PyTorch's _size_2_t:
// Conv2d(3, 8, 3) and Conv2d(3, 8, {3, 5}) both work.
#pragma once
#include <cstdint>

#include "anvil/ops/conv.h"

namespace anvil::nn {

struct Size2 {
  Pair v;
  Size2(int64_t both) : v{both, both} {}    // NOLINT: implicit on purpose
  Size2(int64_t h, int64_t w) : v{h, w} {}  // Size2{3, 5} or {3, 5}
  Size2(Pair p) : v(p) {}                   // NOLINT
  operator Pair() const { return v; }       // NOLINT
  bool square() const { return v[0] == v[1]; }
};

}  // namespace anvil::nn
