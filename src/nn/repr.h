// How extra_repr() spells values: Python's float repr, C++'s bools, tuples for pairs.
#pragma once
#include <string>

#include "anvil/ops/conv.h"

namespace anvil::nn::detail {

using anvil::detail::cat;  // streams its arguments into a string

std::string repr(bool v);    // true / false
std::string repr(double v);  // 0.1, 1.0, 1e-05
std::string repr(Pair p);    // (3, 3)

}  // namespace anvil::nn::detail
