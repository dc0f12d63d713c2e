// Fused scaled-dot-product attention (flash attention): out = softmax(q k^T * scale [+ causal
// mask]) v, computed block by block without the Tq x Tk score matrix in device memory. The
// op layer (scaled_dot_product_attention) calls these only where the device has a kernel and
// the case has no explicit attn_mask; a kernel returns false, having written nothing, for a
// case it does not cover (dtype, head dim, ...), and the op composes the same values from
// matmul, softmax and dropout instead.
#pragma once
#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

struct AttentionArgs {
  int64_t batch = 0;
  int64_t heads = 0;     // query heads H
  int64_t kv_heads = 0;  // key/value heads; divides H. Query head h reads kv head h / (H / kv_heads)
  int64_t q_len = 0, kv_len = 0;  // Tq, Tk
  int64_t head_dim = 0;           // D, the same for q, k and v
  double scale = 0;               // multiplies q k^T before the softmax
  // Query i sees keys j <= i only: torch's is_causal, aligned at the top left (a query
  // with no visible key, possible when Tq > Tk, gets zeros and lse = -inf).
  bool causal = false;
  // Dropout on the probabilities, drawn as dropout() would draw it on the [B, H, Tq, Tk]
  // probability tensor: element n = ((b * H + h) * Tq + i) * Tk + j is kept when the float32
  // uniform of Philox block first_block + n / 4, lane n % 4, is < 1 - dropout_p (see
  // dropout_kernels.h for seed, first_block and device_state inside a graph capture); kept
  // probabilities are scaled by 1 / (1 - dropout_p). So fused and composed attention drop the
  // same elements.
  float dropout_p = 0;
  uint64_t seed = 0, first_block = 0;
  const uint64_t* device_state = nullptr;
};

// q [B, H, Tq, D], k and v [B, Hkv, Tk, D], out [B, H, Tq, D]: contiguous, one floating dtype.
// lse [B, H, Tq] float32 gets log(sum_j exp(scale * q_i . k_j)) over the visible keys (natural
// log, before dropout), which the backward uses to recompute the probabilities.
using AttentionFn = bool(const AttentionArgs& args, const Tensor& out, const Tensor& lse,
                         const Tensor& q, const Tensor& k, const Tensor& v);
// Gradients of q, k and v (shapes and dtype of the inputs, contiguous) from grad_out [B, H, Tq,
// D] and the forward's out and lse. With grouped-query attention a kv head's gradient sums over
// the query heads that read it.
using AttentionBackwardFn = bool(const AttentionArgs& args, const Tensor& grad_q,
                                 const Tensor& grad_k, const Tensor& grad_v,
                                 const Tensor& grad_out, const Tensor& q, const Tensor& k,
                                 const Tensor& v, const Tensor& out, const Tensor& lse);

inline constinit KernelTable<AttentionFn> flash_attention_kernels{"flash_attention"};
inline constinit KernelTable<AttentionBackwardFn> flash_attention_backward_kernels{
    "flash_attention_backward"};

}  // namespace anvil::backend
