// Scaled dot-product attention, as torch.nn.functional.scaled_dot_product_attention:
//   out = dropout(softmax(q k^T * scale + mask), dropout_p) v
#pragma once
#include <optional>

#include "anvil/core/tensor.h"

namespace anvil {

// Shapes: query [..., H, L, E], key [..., Hkv, S, E], value [..., Hkv, S, Ev] of one rank (at
// least 2: [L, E], [N, L, E], [N, H, L, E], ...) -> out [..., H, L, Ev]. The dims before the
// last two (heads included) broadcast between query and key/value as torch's matmul broadcasts
// them; key and value share theirs. With enable_gqa the heads do not broadcast: H is a multiple
// of Hkv and query head h reads key/value head h / (H / Hkv) (grouped-query attention, torch's
// repeat_interleave of the kv heads). For rank 3, [N, L, E], dim 0 counts as the heads.
//
// attn_mask (optional) broadcasts to the scores' shape [..., H, L, S]. A bool mask marks the
// keys a query may attend to (true = takes part); a floating mask (float32 or query's dtype) is
// added to the scores. A query whose every key is masked out (a false row, or -inf
// everywhere) gets zeros, and zero gradients, as torch 2.15 gives on the CPU (older torch
// versions gave NaN).
// is_causal: query i attends to keys j <= i (torch's lower triangle, aligned at the top left
// when L != S). dropout_p: dropout on the attention probabilities, drawn from the default
// generator of the inputs' device as dropout() would draw it on the [..., H, L, S] probability
// tensor (so it is applied whenever dropout_p > 0: pass 0 for evaluation). scale: multiplies
// q k^T, default 1 / sqrt(E).
//
// float16 and bfloat16 inputs are computed in float32 and the result rounded once, as torch's
// math backend does. Where the device has a fused (flash) attention kernel that takes the case
// (no attn_mask, E == Ev, the dims before the heads equal for query and key/value, the query
// heads grouped over the kv heads or equal to them, dropout_p < 1, and the kernel's own dtype
// and head-dim limits), the op runs it: no [L, S] scores in memory, the same values within
// rounding, the same dropped elements for the same generator state. Its backward runs the
// device's backward kernel, or, where that declines, the composition recomputed. The result's
// grad_fn is then named "ScaledDotProductAttentionBackward" (elsewhere it is that of the
// composition's last op). Under autocast the op is on the lower-precision list (query, key,
// value and a floating mask are cast), as in torch.
//
// Throws DTypeError for non-floating or unequal query/key/value dtypes and a mask that is not
// bool, float32 or query's dtype; ShapeError for ranks, embedding sizes (query's E vs key's,
// key's S vs value's), heads (H not a multiple of Hkv with enable_gqa) or batch dims that do
// not broadcast, and a mask that does not broadcast to the scores; ValueError for a mask
// together with is_causal and for dropout_p outside [0, 1]; DeviceError for tensors on
// different devices.
Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& attn_mask = {}, double dropout_p = 0.0,
                                    bool is_causal = false,
                                    std::optional<double> scale = std::nullopt,
                                    bool enable_gqa = false);

}  // namespace anvil
