// scaled_dot_product_attention: the checks, the composed path (matmul, mask, softmax, dropout,
// matmul: every device and floating dtype) and the fused path through
// backend/attention_kernels.h, whose backward falls back to the composed one where the device
// has no backward kernel for the case.
//
// Dropout draws are reserved once, at entry, for the [..., H, L, S] probability tensor, as
// dropout() on it would reserve them. The fused kernel draws from that reservation; the
// composed path hands dropout() a private generator positioned on it (ReplayGenerator). So
// both paths, and the composed backward that recomputes a fused forward, drop the same
// elements, eagerly and inside a CUDA graph capture.
#include "anvil/ops/attention.h"

#include <cmath>
#include <limits>

#include "amp/autocast_ops.h"
#include "anvil/autograd/node.h"
#include "anvil/core/generator.h"
#include "anvil/ops/activation.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/dropout.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/linalg.h"
#include "anvil/ops/mask.h"
#include "anvil/ops/reduction.h"
#include "backend/attention_kernels.h"
#include "backend/dropout_kernels.h"
#include "ops/checks.h"

namespace anvil {
namespace {

constexpr const char* kOp = "scaled_dot_product_attention";
constexpr double kInf = std::numeric_limits<double>::infinity();

// The geometry of one call.
struct Layout {
  Shape batch;                      // the output's dims before the last two (heads included)
  int64_t heads = 1, kv_heads = 1;  // H and Hkv: dim -3 (1 for rank 2)
  int64_t groups = 1;  // query heads per kv head where they are grouped (GQA, one kv head)
  int64_t q_len = 0, kv_len = 0, head_dim = 0, v_dim = 0;

  Shape with(int64_t rows, int64_t cols) const {
    Shape s = batch;
    s.push_back(rows);
    s.push_back(cols);
    return s;
  }
  Shape scores() const { return with(q_len, kv_len); }
  Shape out() const { return with(q_len, v_dim); }
};

Shape leading(const Tensor& t, int64_t trailing) {
  return Shape(t.shape().begin(), t.shape().end() - std::min(t.dim(), trailing));
}

bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const size_t skip = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] != 1 && from[i] != to[skip + i]) return false;
  return true;
}

Layout check_args(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                  double dropout_p, bool is_causal, bool enable_gqa) {
  ops::check_defined(q, kOp, "query");
  ops::check_defined(k, kOp, "key");
  ops::check_defined(v, kOp, "value");
  ops::check_same_device({q, k, v, mask}, kOp);
  ops::check_floating(q, kOp, "query");
  ANVIL_CHECK(k.dtype() == q.dtype() && v.dtype() == q.dtype(), DTypeError, kOp,
              ": expected query, key and value of one dtype, got ", dtype_name(q.dtype()), ", ",
              dtype_name(k.dtype()), " and ", dtype_name(v.dtype()));
  ANVIL_CHECK(q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim(), ShapeError, kOp,
              ": expected query, key and value of one rank, at least 2 ([..., L, E]), got shapes ",
              to_string(q.shape()), ", ", to_string(k.shape()), " and ", to_string(v.shape()));
  ANVIL_CHECK(k.size(-1) == q.size(-1), ShapeError, kOp,
              ": expected key with query's embedding size E = ", q.size(-1), ", got key shape ",
              to_string(k.shape()), " for query shape ", to_string(q.shape()));
  ANVIL_CHECK(v.size(-2) == k.size(-2), ShapeError, kOp,
              ": expected value with key's sequence length S = ", k.size(-2), ", got value shape ",
              to_string(v.shape()), " for key shape ", to_string(k.shape()));
  ANVIL_CHECK(leading(v, 2) == leading(k, 2), ShapeError, kOp,
              ": expected key and value with the same batch dims, got shapes ",
              to_string(k.shape()), " and ", to_string(v.shape()));
  ANVIL_CHECK(dropout_p >= 0 && dropout_p <= 1, ValueError, kOp,
              ": expected dropout_p in [0, 1], got ", dropout_p);
  ANVIL_CHECK(!(mask.defined() && is_causal), ValueError, kOp,
              ": expected attn_mask or is_causal, got both (an explicit mask with "
              "is_causal=true, which torch refuses too)");

  Layout lay;
  lay.q_len = q.size(-2);
  lay.kv_len = k.size(-2);
  lay.head_dim = q.size(-1);
  lay.v_dim = v.size(-1);
  Shape bq = leading(q, 2), bk = leading(k, 2);
  if (q.dim() >= 3) {
    lay.heads = q.size(-3);
    lay.kv_heads = k.size(-3);
    if (enable_gqa) {
      ANVIL_CHECK(lay.kv_heads > 0 ? lay.heads % lay.kv_heads == 0 : lay.heads == 0, ShapeError,
                  kOp, ": with enable_gqa, expected query heads H = ", lay.heads,
                  " to be a multiple of key/value heads Hkv = ", lay.kv_heads, " (query shape ",
                  to_string(q.shape()), ", key shape ", to_string(k.shape()), ")");
      bk.back() = lay.heads;  // the kv heads as repeated for the query heads
    }
    // Query heads grouped over their kv heads (GQA, or one kv head for all): one product per
    // kv head serves its group.
    if (lay.kv_heads > 0 && lay.heads % lay.kv_heads == 0 && (enable_gqa || lay.kv_heads == 1))
      lay.groups = lay.heads / lay.kv_heads;
  }
  lay.batch = broadcast_shapes(bq, bk, kOp);
  if (mask.defined()) {
    ANVIL_CHECK(mask.dtype() == kBool || mask.dtype() == kFloat32 || mask.dtype() == q.dtype(),
                DTypeError, kOp, ": expected attn_mask of dtype bool, float32 or query's dtype ",
                dtype_name(q.dtype()), ", got ", dtype_name(mask.dtype()));
    ANVIL_CHECK(broadcasts_to(mask.shape(), lay.scores()), ShapeError, kOp,
                ": expected attn_mask broadcastable to the scores' shape ", to_string(lay.scores()),
                ", got shape ", to_string(mask.shape()));
  }
  return lay;
}

// A private generator whose next draw is `d`: dropout() on it draws the blocks reserved for
// this call, eagerly or, inside a CUDA graph capture, relative to the graph's device state.
class ReplayGenerator {
 public:
  explicit ReplayGenerator(const Generator::Draw& d) : gen_(d.seed) {
    if (d.device_state) {
      gen_.begin_capture(d.device_state);
      gen_.reserve_draw(d.first_block);  // capture draws count from the graph's base
    } else {
      gen_.set_offset(d.first_block);
    }
  }
  Generator* get() { return &gen_; }

 private:
  Generator gen_;
};

// [..., H, L, X] <-> [..., Hkv, G * L, X]: a kv head's G query heads as one matrix, so that one
// product per kv head serves them all (no repeated copies of key and value).
Tensor group_heads(const Tensor& t, const Layout& lay) {
  if (lay.groups == 1) return t;
  Shape s = leading(t, 3);
  s.insert(s.end(), {lay.kv_heads, lay.groups * t.size(-2), t.size(-1)});
  return t.reshape(s);
}
Tensor ungroup_heads(const Tensor& t, const Layout& lay) {
  if (lay.groups == 1) return t;
  Shape s = leading(t, 3);
  s.insert(s.end(), {lay.heads, lay.q_len, t.size(-1)});
  return t.reshape(s);
}

// softmax(q k^T * scale + mask) v with dropout on the probabilities, from public ops (which
// record the gradients). 16-bit inputs compute in float32 and round the result once.
Tensor composed(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                bool is_causal, double scale, double dropout_p, const Layout& lay, Generator* gen) {
  const bool low = q.dtype() == kFloat16 || q.dtype() == kBFloat16;
  const Tensor qf = low ? q.to(kFloat32) : q, kf = low ? k.to(kFloat32) : k,
               vf = low ? v.to(kFloat32) : v;
  // The transposed key reaches the product kernel as a transpose flag, not as a copy.
  Tensor scores =
      ungroup_heads(matmul(group_heads(mul(qf, scale), lay), kf.transpose(-2, -1)), lay);
  const TensorOptions opts = scores.options();
  Tensor minus_inf, zero, applied = mask;  // the mask, or the causal one
  {
    NoGradGuard no_grad;
    minus_inf = scalar_tensor(-kInf, opts);
    zero = scalar_tensor(0.0, opts);
    if (is_causal)
      applied = tril(ones({lay.q_len, lay.kv_len}, TensorOptions(kBool).device(q.device())));
  }
  if (applied.defined())
    scores = applied.dtype() == kBool ? where(applied, scores, minus_inf) : add(scores, applied);
  Tensor probs;
  if (mask.defined() && lay.kv_len > 0) {
    // torch's _safe_softmax: a row with no key left gets zeros, and zero gradients, not NaN.
    Tensor dead;
    {
      NoGradGuard no_grad;
      dead = eq(amax(scores.detach(), {-1}, true), -kInf);
    }
    probs = where(dead, zero, softmax(where(dead, zero, scores), -1));
  } else {
    probs = softmax(scores, -1);
  }
  if (dropout_p > 0) probs = dropout(probs, dropout_p, true, gen);
  Tensor out = ungroup_heads(matmul(group_heads(probs, lay), vf), lay);
  return low ? out.to(q.dtype()) : out;
}

// ---- the fused path --------------------------------------------------------------------------

// The dropout_p to hand the kernel. It keeps an element when its uniform u < 1 - dropout_p;
// dropout() when u < float(1 - p). The uniforms are multiples of 2^-24, so both keep the same
// elements when 1 - dropout_p is float(1 - p) rounded up to a multiple of 2^-24: a value that,
// like 1 minus it, float32 holds exactly, however the kernel forms 1 - dropout_p.
float flash_dropout_p(double p) {
  const double keep = std::ceil(double(float(1.0 - p)) * 16777216.0) / 16777216.0;
  return float(1.0 - keep);
}

// Whether the case fits the kernels' [B, H, T, D] layout: no mask, E == Ev, the dims before the
// heads equal, the kv heads dividing the query heads (grouped or broadcast), nonempty.
bool fusable(const Tensor& q, const Tensor& k, const Tensor& mask, double dropout_p,
             const Layout& lay) {
  if (!backend::flash_attention_kernels.has(q.device().kind)) return false;
  if (mask.defined() || dropout_p >= 1 || lay.head_dim != lay.v_dim) return false;
  if (q.numel() == 0 || k.numel() == 0) return false;
  return leading(q, 3) == leading(k, 3) &&
         (lay.heads == lay.kv_heads || (lay.groups > 1 && lay.groups * lay.kv_heads == lay.heads));
}

// What the fused forward keeps for its backward: inputs, output and lse as the kernels saw them.
struct FlashSaved {
  backend::AttentionArgs args;
  double dropout_p = 0;  // as the caller gave it, for a composed recompute
  Tensor q, k, v, out, lse;
};

// The layout of the kernels' [B, H, T, D] tensors for the composed path.
Layout flash_layout(const backend::AttentionArgs& a) {
  Layout lay;
  lay.batch = {a.batch, a.heads};
  lay.heads = a.heads;
  lay.kv_heads = a.kv_heads;
  lay.groups = a.heads / a.kv_heads;
  lay.q_len = a.q_len;
  lay.kv_len = a.kv_len;
  lay.head_dim = lay.v_dim = a.head_dim;
  return lay;
}

// Gradients of query, key and value (in their shapes) from the output's gradient: the
// device's backward kernel, or, where it declines, the composed backward of a recomputed
// composed forward (the same dropped elements, so the gradient of what the forward computed).
std::vector<Tensor> scaled_dot_product_attention_backward(const Tensor& grad, const FlashSaved& s,
                                                          const Shape& q_shape,
                                                          const Shape& k_shape,
                                                          const Shape& v_shape) {
  const Tensor g = grad.to(s.q.dtype()).reshape(s.out.shape()).contiguous();
  Tensor gq = Tensor::empty(s.q.shape(), s.q.options());
  Tensor gk = Tensor::empty(s.k.shape(), s.k.options());
  Tensor gv = Tensor::empty(s.v.shape(), s.v.options());
  const auto& table = backend::flash_attention_backward_kernels;
  const Device device = s.q.device();
  if (!(table.has(device.kind) &&
        table[device](s.args, gq, gk, gv, g, s.q, s.k, s.v, s.out, s.lse))) {
    std::optional<ReplayGenerator> replay;
    if (s.dropout_p > 0)
      replay.emplace(Generator::Draw{s.args.seed, s.args.first_block, s.args.device_state});
    EnableGradGuard enable;
    Tensor q = s.q.detach().requires_grad_(), k = s.k.detach().requires_grad_(),
           v = s.v.detach().requires_grad_();
    Tensor out = composed(q, k, v, Tensor(), s.args.causal, s.args.scale, s.dropout_p,
                          flash_layout(s.args), replay ? replay->get() : nullptr);
    std::vector<Tensor> grads = autograd::grad({out}, {q, k, v}, {g});
    gq = grads[0];
    gk = grads[1];
    gv = grads[2];
  }
  return {gq.reshape(q_shape), gk.reshape(k_shape), gv.reshape(v_shape)};
}

// The fused forward, recorded; undefined when the kernel declines the case.
Tensor fused(const Tensor& q, const Tensor& k, const Tensor& v, bool is_causal, double scale,
             double dropout_p, const Layout& lay, const std::optional<Generator::Draw>& draw) {
  const int64_t b = q.numel() / (lay.heads * lay.q_len * lay.head_dim);
  FlashSaved s;
  backend::AttentionArgs& args = s.args;
  args.batch = b;
  args.heads = lay.heads;
  args.kv_heads = lay.kv_heads;
  args.q_len = lay.q_len;
  args.kv_len = lay.kv_len;
  args.head_dim = lay.head_dim;
  args.scale = scale;
  args.causal = is_causal;
  if (draw) {
    args.dropout_p = flash_dropout_p(dropout_p);
    args.seed = draw->seed;
    args.first_block = draw->first_block;
    args.device_state = draw->device_state;
  }
  s.dropout_p = dropout_p;
  Tensor out = Tensor::empty(lay.out(), q.options());
  {
    NoGradGuard no_grad;
    s.q = q.detach().reshape({b, lay.heads, lay.q_len, lay.head_dim}).contiguous();
    s.k = k.detach().reshape({b, lay.kv_heads, lay.kv_len, lay.head_dim}).contiguous();
    s.v = v.detach().reshape({b, lay.kv_heads, lay.kv_len, lay.head_dim}).contiguous();
    s.out = out.view({b, lay.heads, lay.q_len, lay.head_dim});
    s.lse = Tensor::empty({b, lay.heads, lay.q_len}, TensorOptions(kFloat32).device(q.device()));
    if (!backend::flash_attention_kernels[q.device()](args, s.out, s.lse, s.q, s.k, s.v))
      return Tensor();
  }
  return autograd::record("ScaledDotProductAttentionBackward", out, {q, k, v},
                          [s, qs = q.shape(), ks = k.shape(), vs = v.shape()](const Tensor& g) {
                            return scaled_dot_product_attention_backward(g, s, qs, ks, vs);
                          });
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& attn_mask, double dropout_p, bool is_causal,
                                    std::optional<double> scale, bool enable_gqa) {
  if (amp::detail::autocast_active({&query, &key, &value, &attn_mask}))
    return amp::detail::run_autocast(amp::detail::CastPolicy::LowerPrecision,
                                     {query, key, value, attn_mask}, [&](const auto& t) {
                                       return scaled_dot_product_attention(t[0], t[1], t[2], t[3],
                                                                           dropout_p, is_causal,
                                                                           scale, enable_gqa);
                                     });
  const Layout lay = check_args(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa);
  const double s = scale.value_or(1.0 / std::sqrt(double(lay.head_dim)));
  // p == 1 drops everything without drawing, as dropout() does.
  std::optional<Generator::Draw> draw;
  if (dropout_p > 0 && dropout_p < 1)
    draw = default_generator(query.device())
               .reserve_draw(backend::dropout_blocks(numel(lay.scores())));
  if (fusable(query, key, attn_mask, dropout_p, lay)) {
    Tensor out = fused(query, key, value, is_causal, s, dropout_p, lay, draw);
    if (out.defined()) return out;
  }
  std::optional<ReplayGenerator> replay;
  if (draw) replay.emplace(*draw);
  return composed(query, key, value, attn_mask, is_causal, s, dropout_p, lay,
                  replay ? replay->get() : nullptr);
}

}  // namespace anvil
