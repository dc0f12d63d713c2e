// Rotary position embedding (RoPE) in Hugging Face's convention (apply_rotary_pos_emb with
// rotate_half, as Llama, Mistral and GPT-NeoX use it): the two halves of each head vector are
// rotated as pairs (x[i], x[i + D/2]) by the angle of position t and frequency i.
#pragma once
#include "anvil/core/tensor.h"

namespace anvil {

// out = x * cos + rotate_half(x) * sin, with rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2]).
// x [..., T, D] (typically [B, H, T, D]) with D even; cos and sin of x's dtype and device,
// broadcastable to x's shape: [T, D] as rotary_cos_sin makes them, or [B, 1, T, D] for
// per-sequence positions. Each element is computed in x's compute type (float32 for the 16-bit
// dtypes) and rounded once (torch's composition rounds after each of its four ops). The result
// is a new contiguous tensor of x's shape.
// Gradients: x gets g * cos + rotate_half^T(g * sin), where rotate_half^T(y) =
// cat(y[..., D/2:], -y[..., :D/2]); cos and sin are usually constants, but when they require
// grad they get g * x and g * rotate_half(x), summed down to their shapes.
// Throws DTypeError for a non-floating x or cos/sin of another dtype, ShapeError for an odd D
// or cos/sin that do not broadcast to x, DeviceError for tensors on different devices.
Tensor apply_rotary(const Tensor& x, const Tensor& cos, const Tensor& sin);

struct RotaryCosSin {
  Tensor cos, sin;  // [seq_len, dim] each
};

// The tables of Hugging Face's LlamaRotaryEmbedding (default rope type) for positions 0 to
// seq_len - 1: inv_freq[k] = 1 / base^(2k / dim) for k < dim / 2, freqs[t, k] = t * inv_freq[k],
// emb = cat(freqs, freqs) along the last dim, cos = cos(emb), sin = sin(emb). Computed in
// float32 as Hugging Face does (in float64 when options asks for float64), then converted to
// options' dtype (default float32), on options' device. Build them once, outside a training
// step: the positions are uploaded from the host. Throws ValueError for a negative seq_len, a
// dim that is not positive and even, or a base <= 0; DTypeError for a non-floating dtype.
RotaryCosSin rotary_cos_sin(int64_t seq_len, int64_t dim, double base = 10000.0,
                            TensorOptions options = {});

}  // namespace anvil
