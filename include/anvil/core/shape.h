// Shapes and strides: plain vectors of int64 with the helpers every op needs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace anvil {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;

int64_t numel(const Shape& s);
Strides contiguous_strides(const Shape& s);
// NHWC strides of a 4-D [N, C, H, W] shape: [H*W*C, 1, W*C, C].
Strides channels_last_strides(const Shape& s);
std::string to_string(const Shape& s);  // "[2, 3]"
// Wraps a possibly negative dim into [0, ndim). Throws IndexError naming `op` when out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
// NumPy broadcasting of two shapes. Throws ShapeError naming `op` when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace anvil
