// MultiheadAttention: torch's F.multi_head_attention_forward, computed batch-first inside.
#include "anvil/nn/multihead_attention.h"

#include <cmath>
#include <limits>
#include <tuple>

#include "anvil/nn/init.h"
#include "anvil/ops/activation.h"
#include "anvil/ops/attention.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/dropout.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/join.h"
#include "anvil/ops/linalg.h"
#include "anvil/ops/mask.h"
#include "anvil/ops/reduction.h"
#include "nn/repr.h"

namespace anvil::nn {
namespace {

constexpr const char* kOp = "MultiheadAttention::forward";
constexpr double kInf = std::numeric_limits<double>::infinity();

std::string describe(const Tensor& t) {
  return t.defined() ? "shape " + to_string(t.shape()) : std::string("an undefined tensor");
}

// torch's F._canonical_mask: a bool mask (true = masked out) as 0 / -inf in `dtype`, a floating
// one converted to `dtype`.
Tensor canonical_mask(const Tensor& mask, const char* name, DType dtype) {
  if (!mask.defined()) return mask;
  ANVIL_CHECK(mask.dtype() == kBool || mask.is_floating_point(), DTypeError, kOp, ": expected ",
              name, " of dtype bool or floating, got ", dtype_name(mask.dtype()));
  if (mask.dtype() != kBool) return mask.to(dtype);
  return masked_fill(zeros(mask.shape(), TensorOptions(dtype).device(mask.device())), mask, -kInf);
}

// A floating mask with one more key (a zero column), for an appended bias or zero key.
Tensor pad_key(const Tensor& mask) {
  if (!mask.defined()) return mask;
  Shape s = mask.shape();
  s.back() = 1;
  return cat({mask, zeros(s, TensorOptions(mask.dtype()).device(mask.device()))}, -1);
}

}  // namespace

MultiheadAttention::MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout,
                                       bool bias, bool add_bias_kv, bool add_zero_attn,
                                       std::optional<int64_t> kdim, std::optional<int64_t> vdim,
                                       bool batch_first)
    : embed_dim(embed_dim),
      kdim(kdim.value_or(embed_dim)),
      vdim(vdim.value_or(embed_dim)),
      num_heads(num_heads),
      head_dim(0),
      dropout(dropout),
      batch_first(batch_first),
      add_zero_attn(add_zero_attn) {
  ANVIL_CHECK(embed_dim > 0 && num_heads > 0, ValueError,
              "MultiheadAttention: expected positive embed_dim and num_heads, got embed_dim=",
              embed_dim, " and num_heads=", num_heads);
  ANVIL_CHECK(embed_dim % num_heads == 0, ValueError,
              "MultiheadAttention: expected embed_dim divisible by num_heads, got embed_dim=",
              embed_dim, " and num_heads=", num_heads);
  ANVIL_CHECK(this->kdim > 0 && this->vdim > 0, ValueError,
              "MultiheadAttention: expected positive kdim and vdim, got kdim=", this->kdim,
              " and vdim=", this->vdim);
  ANVIL_CHECK(dropout >= 0 && dropout <= 1, ValueError,
              "MultiheadAttention: expected a dropout probability between 0 and 1, got ", dropout);
  head_dim = embed_dim / num_heads;
  qkv_same_embed_dim = this->kdim == embed_dim && this->vdim == embed_dim;
  // torch's registration order: the projection weights, in_proj_bias, out_proj, bias_k, bias_v.
  if (qkv_same_embed_dim) {
    in_proj_weight = register_parameter("in_proj_weight", empty({3 * embed_dim, embed_dim}));
  } else {
    q_proj_weight = register_parameter("q_proj_weight", empty({embed_dim, embed_dim}));
    k_proj_weight = register_parameter("k_proj_weight", empty({embed_dim, this->kdim}));
    v_proj_weight = register_parameter("v_proj_weight", empty({embed_dim, this->vdim}));
  }
  in_proj_bias = register_parameter("in_proj_bias", bias ? empty({3 * embed_dim}) : Tensor());
  out_proj = register_module("out_proj", std::make_shared<Linear>(embed_dim, embed_dim, bias));
  if (add_bias_kv) {
    bias_k = register_parameter("bias_k", empty({1, 1, embed_dim}));
    bias_v = register_parameter("bias_v", empty({1, 1, embed_dim}));
  }
  reset_parameters();
}

MultiheadAttention::MultiheadAttention(int64_t embed_dim, int64_t num_heads,
                                       const MultiheadAttentionOptions& o)
    : MultiheadAttention(embed_dim, num_heads, o.dropout, o.bias, o.add_bias_kv, o.add_zero_attn,
                         o.kdim, o.vdim, o.batch_first) {}

void MultiheadAttention::reset_parameters() {
  out_proj->reset_parameters();
  if (qkv_same_embed_dim) {
    init::xavier_uniform_(in_proj_weight);
  } else {
    init::xavier_uniform_(q_proj_weight);
    init::xavier_uniform_(k_proj_weight);
    init::xavier_uniform_(v_proj_weight);
  }
  if (in_proj_bias.defined()) {
    init::zeros_(in_proj_bias);
    init::zeros_(out_proj->bias);
  }
  if (bias_k.defined()) init::xavier_normal_(bias_k);
  if (bias_v.defined()) init::xavier_normal_(bias_v);
}

Tensor MultiheadAttention::forward(const Tensor& x) {
  return forward(x, x, x, {}, false).attn_output;
}

MultiheadAttention::Output MultiheadAttention::forward(const Tensor& query, const Tensor& key,
                                                       const Tensor& value,
                                                       const Tensor& key_padding_mask,
                                                       bool need_weights, const Tensor& attn_mask,
                                                       bool average_attn_weights, bool is_causal) {
  // ---- checks, in the caller's layout ----
  ANVIL_CHECK(query.defined() && (query.dim() == 2 || query.dim() == 3), ShapeError, kOp,
              ": expected query ", batch_first ? "[N, L, E]" : "[L, N, E]",
              " (batched) or [L, E] (unbatched), got ", describe(query));
  const bool batched = query.dim() == 3;
  const int64_t seq_dim = batched && batch_first ? 1 : 0;
  auto expected = [&](const char* len, int64_t features) {
    if (!batched) return detail::cat("[", len, ", ", features, "]");
    return batch_first ? detail::cat("[N, ", len, ", ", features, "]")
                       : detail::cat("[", len, ", N, ", features, "]");
  };
  ANVIL_CHECK(query.size(-1) == embed_dim, ShapeError, kOp, ": expected query ",
              expected("L", embed_dim), ", got shape ", to_string(query.shape()));
  for (auto [t, name, features] :
       {std::tuple{&key, "key", kdim}, std::tuple{&value, "value", vdim}}) {
    ANVIL_CHECK(t->defined() && t->dim() == query.dim() && t->size(-1) == features, ShapeError, kOp,
                ": expected ", name, " ", expected("S", features), " (query is ",
                to_string(query.shape()), "), got ", describe(*t));
    ANVIL_CHECK(!batched || t->size(1 - seq_dim) == query.size(1 - seq_dim), ShapeError, kOp,
                ": expected ", name, " with the batch size N=", query.size(1 - seq_dim),
                " of query, got shape ", to_string(t->shape()));
  }
  ANVIL_CHECK(key.size(seq_dim) == value.size(seq_dim), ShapeError, kOp,
              ": expected key and value of the same sequence length S, got key ",
              to_string(key.shape()), " and value ", to_string(value.shape()));
  const int64_t L = query.size(seq_dim), S = key.size(seq_dim);
  const int64_t N = batched ? query.size(1 - seq_dim) : 1;
  const int64_t H = num_heads, D = head_dim, E = embed_dim;
  if (key_padding_mask.defined()) {
    const Shape want = batched ? Shape{N, S} : Shape{S};
    ANVIL_CHECK(key_padding_mask.shape() == want, ShapeError, kOp, ": expected key_padding_mask ",
                batched ? "[N, S] = " : "[S] = ", to_string(want), ", got shape ",
                to_string(key_padding_mask.shape()));
  }
  if (attn_mask.defined()) {
    const Shape m2{L, S}, m3{N * H, L, S};
    ANVIL_CHECK(attn_mask.shape() == m2 || attn_mask.shape() == m3, ShapeError, kOp,
                ": expected attn_mask [L, S] = ", to_string(m2), " or ",
                batched ? "[N * num_heads, L, S] = " : "[num_heads, L, S] = ", to_string(m3),
                ", got shape ", to_string(attn_mask.shape()));
  }
  const DType dt = query.dtype();
  Tensor kpm = canonical_mask(key_padding_mask, "key_padding_mask", dt);
  Tensor mask = canonical_mask(attn_mask, "attn_mask", dt);

  // ---- to [N, len, features] ----
  const bool self_attention = query.is_same(key) && key.is_same(value);
  auto batch_major = [&](const Tensor& t) {
    return !batched ? t.unsqueeze(0) : batch_first ? t : t.transpose(0, 1);
  };
  Tensor q = batch_major(query), k = batch_major(key), v = batch_major(value);
  if (kpm.defined() && !batched) kpm = kpm.unsqueeze(0);

  // is_causal: the scaled_dot_product_attention flag where torch passes it, else a mask.
  bool sdpa_causal = false;
  if (is_causal && !kpm.defined() && !need_weights) {
    mask = Tensor();
    sdpa_causal = true;
  } else if (is_causal && !mask.defined()) {
    mask = triu(full({L, S}, -kInf, TensorOptions(dt).device(query.device())), 1);
  }

  // ---- input projections ----
  Tensor b_q, b_k, b_v;
  if (in_proj_bias.defined()) {
    b_q = in_proj_bias.narrow(0, 0, E);
    b_k = in_proj_bias.narrow(0, E, E);
    b_v = in_proj_bias.narrow(0, 2 * E, E);
  }
  if (qkv_same_embed_dim && self_attention) {
    std::vector<Tensor> qkv = chunk(linear(q, in_proj_weight, in_proj_bias), 3, -1);
    q = qkv[0], k = qkv[1], v = qkv[2];
  } else if (qkv_same_embed_dim) {
    q = linear(q, in_proj_weight.narrow(0, 0, E), b_q);
    k = linear(k, in_proj_weight.narrow(0, E, E), b_k);
    v = linear(v, in_proj_weight.narrow(0, 2 * E, E), b_v);
  } else {
    q = linear(q, q_proj_weight, b_q);
    k = linear(k, k_proj_weight, b_k);
    v = linear(v, v_proj_weight, b_v);
  }
  if (bias_k.defined()) {
    k = cat({k, bias_k.expand({N, 1, E})}, 1);
    v = cat({v, bias_v.expand({N, 1, E})}, 1);
    mask = pad_key(mask);
    kpm = pad_key(kpm);
  }

  // ---- heads: [N, H, len, D] ----
  auto heads = [&](const Tensor& t) {
    return t.reshape({N, t.size(1), H, D}).permute({0, 2, 1, 3});
  };
  q = heads(q), k = heads(k), v = heads(v);
  if (add_zero_attn) {
    const TensorOptions opts = TensorOptions(k.dtype()).device(k.device());
    k = cat({k, zeros({N, H, 1, D}, opts)}, 2);
    v = cat({v, zeros({N, H, 1, D}, opts)}, 2);
    mask = pad_key(mask);
    kpm = pad_key(kpm);
  }
  const int64_t keys = k.size(2);
  // The masks broadcast to the scores [N, H, L, keys].
  if (mask.defined() && mask.dim() == 3) mask = mask.reshape({N, H, L, keys});
  if (kpm.defined()) {
    Tensor k4 = kpm.reshape({N, 1, 1, keys});
    mask = mask.defined() ? add(mask, k4) : k4;
  }

  // ---- attention ----
  const double p = is_training() ? dropout : 0.0;
  Tensor out, weights;
  if (need_weights) {
    Tensor scores = matmul(mul(q, std::sqrt(1.0 / double(D))), k.transpose(-2, -1));
    if (mask.defined()) scores = add(mask, scores);
    weights = softmax(scores, -1);
    out = matmul(p > 0 ? anvil::dropout(weights, p, true) : weights, v);
  } else {
    out = scaled_dot_product_attention(q, k, v, mask, p, sdpa_causal);
  }
  out = (*out_proj)(out.permute({0, 2, 1, 3}).reshape({N, L, E}));

  // ---- back to the caller's layout ----
  if (!batched) {
    out = out.squeeze(0);
  } else if (!batch_first) {
    out = out.transpose(0, 1);
  }
  if (weights.defined()) {
    if (average_attn_weights) weights = mean(weights, {1});
    if (!batched) weights = weights.squeeze(0);
  }
  return {out, weights};
}

std::string MultiheadAttention::extra_repr() const {
  std::string s = detail::cat("embed_dim=", embed_dim, ", num_heads=", num_heads,
                              ", dropout=", detail::repr(dropout),
                              ", bias=", detail::repr(in_proj_bias.defined()));
  if (!qkv_same_embed_dim) s += detail::cat(", kdim=", kdim, ", vdim=", vdim);
  if (bias_k.defined()) s += ", add_bias_kv=true";
  if (add_zero_attn) s += ", add_zero_attn=true";
  return s + ", batch_first=" + detail::repr(batch_first);
}

}  // namespace anvil::nn
