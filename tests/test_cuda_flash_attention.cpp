// The fused flash-attention CUDA kernels (backend/attention_kernels.h), called through their
// kernel tables: forward out and lse, and backward dq, dk and dv, from poisoned outputs, against
// a float64 reference composed on the CPU from anvil's own ops (matmul, softmax, autograd) on
// the same 16-bit values; over head dims, causal masks, ragged lengths, grouped-query heads,
// dropout drawn as dropout() draws it (the reference applies the mask rand() gives for the same
// seed and first block), graph-style device state, deterministic mode and the refused cases.
// Skipped without a GPU.
#include <cmath>
#include <string>
#include <vector>

#include "backend/attention_kernels.h"
#include "support/cuda_check.h"

using namespace anvil;
using backend::AttentionArgs;

namespace {

struct Case {
  int64_t batch = 2, heads = 3, kv_heads = 3, q_len = 1, kv_len = 1, head_dim = 64;
  bool causal = false;
  DType dtype = kBFloat16;
  float dropout_p = 0;
  double scale = 0;  // 0: 1 / sqrt(head_dim)

  std::string str() const {
    return std::string(dtype_name(dtype)) + " B" + std::to_string(batch) + " H" +
           std::to_string(heads) + "/" + std::to_string(kv_heads) + " Tq" +
           std::to_string(q_len) + " Tk" + std::to_string(kv_len) + " D" +
           std::to_string(head_dim) + (causal ? " causal" : "") +
           (dropout_p > 0 ? " p" + std::to_string(dropout_p) : "");
  }
  double softmax_scale() const { return scale > 0 ? scale : 1.0 / std::sqrt(double(head_dim)); }
};

constexpr uint64_t kSeed = 20261207, kFirstBlock = 12345;

AttentionArgs args_of(const Case& c) {
  AttentionArgs a;
  a.batch = c.batch;
  a.heads = c.heads;
  a.kv_heads = c.kv_heads;
  a.q_len = c.q_len;
  a.kv_len = c.kv_len;
  a.head_dim = c.head_dim;
  a.scale = c.softmax_scale();
  a.causal = c.causal;
  a.dropout_p = c.dropout_p;
  a.seed = kSeed;
  a.first_block = kFirstBlock;
  return a;
}

// Inputs on the CPU in the case's dtype.
struct Inputs {
  Tensor q, k, v, grad_out;
};
Inputs inputs_of(const Case& c, uint64_t seed) {
  const Shape qs{c.batch, c.heads, c.q_len, c.head_dim};
  const Shape ks{c.batch, c.kv_heads, c.kv_len, c.head_dim};
  return {test::rnd(qs, seed, c.dtype, -2, 2), test::rnd(ks, seed + 1, c.dtype, -2, 2),
          test::rnd(ks, seed + 2, c.dtype, -1, 1), test::rnd(qs, seed + 3, c.dtype, -1, 1)};
}

// dropout()'s keep mask for the [B, H, Tq, Tk] probabilities: rand() from the same seed and
// first block, below 1 - p in float32.
Tensor keep_mask(const Case& c) {
  Generator gen(kSeed);
  gen.set_offset(kFirstBlock);
  Tensor u = rand({c.batch, c.heads, c.q_len, c.kv_len}, TensorOptions(kFloat32), &gen);
  return lt(u, double(float(1.0 - double(c.dropout_p))));
}

struct Result {
  Tensor out, lse, dq, dk, dv;
};

// float64 attention on the CPU, composed: S = q k^T scale (causal: -inf above the diagonal),
// lse = logsumexp(S), P = softmax(S) (times keep / (1 - p)), out = P v; gradients by autograd.
Result reference(const Case& c, const Inputs& in) {
  Tensor q = in.q.to(kFloat64).requires_grad_();
  Tensor k = in.k.to(kFloat64).requires_grad_();
  Tensor v = in.v.to(kFloat64).requires_grad_();
  const int64_t group = c.heads / c.kv_heads;
  auto per_query_head = [&](const Tensor& x) {
    return x.reshape({c.batch, c.kv_heads, 1, c.kv_len, c.head_dim})
        .expand({c.batch, c.kv_heads, group, c.kv_len, c.head_dim})
        .reshape({c.batch, c.heads, c.kv_len, c.head_dim});
  };
  Tensor s = mul(matmul(q, per_query_head(k).transpose(-2, -1)), c.softmax_scale());
  if (c.causal) {
    Tensor later = gt(arange(c.kv_len).reshape({1, c.kv_len}), arange(c.q_len).reshape({c.q_len, 1}));
    s = where(later, full({}, -INFINITY, kFloat64), s);
  }
  Result r;
  {
    NoGradGuard no_grad;
    Tensor m = amax(s, {-1}, true);
    r.lse = add(m, log(sum(exp(sub(s, m)), {-1}, true))).squeeze(-1);
  }
  Tensor p = softmax(s, -1);
  if (c.dropout_p > 0)
    p = mul(mul(p, keep_mask(c).to(kFloat64)), 1.0 / (1.0 - double(c.dropout_p)));
  r.out = matmul(p, per_query_head(v));
  std::vector<Tensor> g = autograd::grad({r.out}, {q, k, v}, {in.grad_out.to(kFloat64)});
  r.out = r.out.detach();
  r.dq = g[0];
  r.dk = g[1];
  r.dv = g[2];
  return r;
}

Tensor poisoned(const Shape& shape, DType dtype) {
  return full(shape, NAN, TensorOptions(dtype).device(kCUDA));
}

// The fused kernels on the GPU, outputs poisoned with NaN first.
Result fused(const Case& c, const Inputs& in, const AttentionArgs& a) {
  Tensor q = in.q.cuda(), k = in.k.cuda(), v = in.v.cuda(), go = in.grad_out.cuda();
  test::poison_device_cache();
  Result r;
  r.out = poisoned(q.shape(), c.dtype);
  r.lse = poisoned({c.batch, c.heads, c.q_len}, kFloat32);
  EXPECT_TRUE(backend::flash_attention_kernels[kCUDA](a, r.out, r.lse, q, k, v)) << c.str();
  r.dq = poisoned(q.shape(), c.dtype);
  r.dk = poisoned(k.shape(), c.dtype);
  r.dv = poisoned(v.shape(), c.dtype);
  test::poison_device_cache();
  EXPECT_TRUE(backend::flash_attention_backward_kernels[kCUDA](a, r.dq, r.dk, r.dv, go, q, k, v,
                                                               r.out, r.lse))
      << c.str();
  return r;
}

// got (any device and dtype) against a float64 reference: no NaN, ||got - ref|| within
// `norm` of ||ref|| (or of an absolute floor where the reference is nearly zero), and every
// element within rtol |ref| + atol max|ref| (+ the same floor).
::testing::AssertionResult near(const Tensor& got, const Tensor& ref, double norm, double rtol,
                                double atol, const std::string& what) {
  Tensor a = got.cpu().to(kFloat64);
  if (a.shape() != ref.shape())
    return ::testing::AssertionFailure() << what << ": shape " << to_string(a.shape()) << " vs "
                                         << to_string(ref.shape());
  const double nan_count = sum(isnan(a).to(kFloat64)).item<double>();
  if (nan_count > 0) return ::testing::AssertionFailure() << what << ": " << nan_count << " NaN";
  const double floor = 1e-3;
  const double diff = std::sqrt(sum(square(sub(a, ref))).item<double>());
  const double size = std::sqrt(sum(square(ref)).item<double>());
  const double rms_floor = floor * std::sqrt(double(std::max<int64_t>(ref.numel(), 1)));
  if (diff > norm * size + rms_floor)
    return ::testing::AssertionFailure() << what << ": ||diff|| " << diff << " vs ||ref|| "
                                         << size << " (relative " << diff / size << ")";
  const double max_ref = ref.numel() ? max(abs(ref)).item<double>() : 0.0;
  return test::all_close(a, ref, rtol, atol * max_ref + floor) << " (" << what << ")";
}

struct Tolerances {
  double norm, rtol, atol;
};
Tolerances forward_tol(DType dt) { return dt == kBFloat16 ? Tolerances{1e-2, 2e-2, 1e-2} : Tolerances{2e-3, 5e-3, 2e-3}; }
Tolerances backward_tol(DType dt) { return dt == kBFloat16 ? Tolerances{2e-2, 3e-2, 2e-2} : Tolerances{4e-3, 1e-2, 4e-3}; }

void expect_matches_reference(const Case& c, uint64_t seed = 7) {
  SCOPED_TRACE(c.str());
  const Inputs in = inputs_of(c, seed);
  const Result want = reference(c, in);
  const Result got = fused(c, in, args_of(c));
  const Tolerances f = forward_tol(c.dtype), b = backward_tol(c.dtype);
  EXPECT_TRUE(near(got.out, want.out, f.norm, f.rtol, f.atol, "out"));
  EXPECT_TRUE(near(got.lse, want.lse, 1e-5, 1e-5, 1e-5, "lse"));
  EXPECT_TRUE(near(got.dq, want.dq, b.norm, b.rtol, b.atol, "dq"));
  EXPECT_TRUE(near(got.dk, want.dk, b.norm, b.rtol, b.atol, "dk"));
  EXPECT_TRUE(near(got.dv, want.dv, b.norm, b.rtol, b.atol, "dv"));
}

const std::vector<std::pair<int64_t, int64_t>> kLengths = {{1, 1},     {17, 17},  {128, 128},
                                                            {200, 77}, {77, 200}, {1000, 1000}};

class CudaFlashAttention : public test::CudaTest {
 protected:
  void TearDown() override { use_deterministic_algorithms(false); }

  void sweep(int64_t head_dim, bool causal, int64_t heads, int64_t kv_heads, bool long_too) {
    for (DType dt : {kBFloat16, kFloat16})
      for (auto [tq, tk] : kLengths) {
        if (!long_too && tq == 1000) continue;
        Case c;
        c.heads = heads;
        c.kv_heads = kv_heads;
        c.q_len = tq;
        c.kv_len = tk;
        c.head_dim = head_dim;
        c.causal = causal;
        c.dtype = dt;
        expect_matches_reference(c);
      }
  }
};

TEST_F(CudaFlashAttention, HeadDim64MatchesFloat64Reference) { sweep(64, false, 3, 3, true); }
TEST_F(CudaFlashAttention, HeadDim64CausalMatchesFloat64Reference) { sweep(64, true, 3, 3, true); }
TEST_F(CudaFlashAttention, HeadDim128MatchesFloat64Reference) { sweep(128, false, 3, 3, true); }
TEST_F(CudaFlashAttention, HeadDim128CausalMatchesFloat64Reference) {
  sweep(128, true, 3, 3, true);
}

TEST_F(CudaFlashAttention, GroupedQueryHeadsSumIntoTheirKvHead) {
  for (int64_t d : {64, 128})
    for (bool causal : {false, true}) sweep(d, causal, 4, 2, false);
  Case c;  // one kv head for all
  c.heads = 4;
  c.kv_heads = 1;
  c.q_len = 130;
  c.kv_len = 257;
  c.head_dim = 128;
  expect_matches_reference(c);
}

// Many key tiles and sharp scores: the running maximum changes often and by a lot.
TEST_F(CudaFlashAttention, SharpScoresOverManyKeyTiles) {
  for (int64_t d : {64, 128})
    for (bool causal : {false, true}) {
      Case c;
      c.batch = 1;
      c.heads = 2;
      c.kv_heads = 2;
      c.q_len = 300;
      c.kv_len = 2500;
      c.head_dim = d;
      c.causal = causal;
      c.scale = 0.6;
      expect_matches_reference(c);
    }
}

TEST_F(CudaFlashAttention, DropoutMatchesTheReferenceWithRandsMask) {
  for (DType dt : {kBFloat16, kFloat16})
    for (int64_t d : {64, 128})
      for (bool causal : {false, true}) {
        Case c;
        c.heads = 4;
        c.kv_heads = 2;
        c.q_len = 200;
        c.kv_len = 77;  // odd: keep pairs straddle Philox blocks
        c.head_dim = d;
        c.causal = causal;
        c.dtype = dt;
        c.dropout_p = 0.3f;
        expect_matches_reference(c);
        std::swap(c.q_len, c.kv_len);
        expect_matches_reference(c);
      }
}

// Inside a CUDA graph the seed and base come from device memory, first_block relative to it:
// the same elements drop as with the absolute first block.
TEST_F(CudaFlashAttention, DropoutReadsSeedAndBaseFromDeviceState) {
  Case c;
  c.q_len = 150;
  c.kv_len = 99;
  c.head_dim = 128;
  c.dropout_p = 0.4f;
  const Inputs in = inputs_of(c, 3);
  const AttentionArgs eager = args_of(c);
  const uint64_t base = 1000;
  Tensor state = tensor<int64_t>({int64_t(kSeed), int64_t(base)}).cuda();
  AttentionArgs graphed = eager;
  graphed.seed = 1;  // ignored where device_state is set
  graphed.first_block = kFirstBlock - base;
  graphed.device_state = reinterpret_cast<const uint64_t*>(state.data_ptr());
  const Result a = fused(c, in, eager), b = fused(c, in, graphed);
  EXPECT_TRUE(equal(a.out.cpu(), b.out.cpu()));
  EXPECT_TRUE(equal(a.dk.cpu(), b.dk.cpu()));
  AttentionArgs other = eager;
  other.first_block += 1;
  EXPECT_FALSE(equal(fused(c, in, other).out.cpu(), a.out.cpu()));  // the mask does move
}

TEST_F(CudaFlashAttention, DeterministicModeMatchesAndRepeatsBitForBit) {
  use_deterministic_algorithms(true);
  for (int64_t d : {64, 128})
    for (bool causal : {false, true}) {
      Case c;
      c.heads = 4;
      c.kv_heads = 2;
      c.q_len = 333;
      c.kv_len = 190;
      c.head_dim = d;
      c.causal = causal;
      expect_matches_reference(c);
      c.dropout_p = 0.2f;
      expect_matches_reference(c);
      const Inputs in = inputs_of(c, 11);
      const Result a = fused(c, in, args_of(c)), b = fused(c, in, args_of(c));
      EXPECT_TRUE(equal(a.dq.cpu(), b.dq.cpu())) << c.str();
      EXPECT_TRUE(equal(a.dk.cpu(), b.dk.cpu())) << c.str();
      EXPECT_TRUE(equal(a.dv.cpu(), b.dv.cpu())) << c.str();
    }
}

// Capturable: no host synchronisation, temporaries from the caching allocator. A replay gives
// the eager results (dq up to the order of its atomic additions).
TEST_F(CudaFlashAttention, CapturedIntoACudaGraphReplaysTheEagerResult) {
  Case c;
  c.heads = 4;
  c.kv_heads = 2;
  c.q_len = 300;
  c.kv_len = 200;
  c.head_dim = 128;
  c.causal = true;
  const Inputs in = inputs_of(c, 5);
  const AttentionArgs a = args_of(c);
  const Result eager = fused(c, in, a);
  Tensor q = in.q.cuda(), k = in.k.cuda(), v = in.v.cuda(), go = in.grad_out.cuda();
  Result r;
  CUDAGraph graph;
  graph.capture_begin();
  r.out = empty(q.shape(), TensorOptions(c.dtype).device(kCUDA));
  r.lse = empty({c.batch, c.heads, c.q_len}, TensorOptions(kFloat32).device(kCUDA));
  r.dq = empty_like(q);
  r.dk = empty_like(k);
  r.dv = empty_like(v);
  const bool fwd = backend::flash_attention_kernels[kCUDA](a, r.out, r.lse, q, k, v);
  const bool bwd = backend::flash_attention_backward_kernels[kCUDA](a, r.dq, r.dk, r.dv, go, q, k,
                                                                    v, r.out, r.lse);
  graph.capture_end();
  ASSERT_TRUE(fwd && bwd);
  EXPECT_GE(graph.num_nodes(), 4u);  // forward, prep, backward, conversion
  graph.replay();
  EXPECT_TRUE(equal(r.out.cpu(), eager.out.cpu()));
  EXPECT_TRUE(equal(r.lse.cpu(), eager.lse.cpu()));
  EXPECT_TRUE(equal(r.dk.cpu(), eager.dk.cpu()));
  EXPECT_TRUE(equal(r.dv.cpu(), eager.dv.cpu()));
  EXPECT_TRUE(test::all_close(r.dq.cpu().to(kFloat64), eager.dq.cpu().to(kFloat64), 1e-2, 1e-3));
}

// A case the kernels do not cover returns false with the outputs untouched.
TEST_F(CudaFlashAttention, RefusesFloat32AndOtherHeadDims) {
  auto refused = [](const Case& c, DType dtype) {
    SCOPED_TRACE(c.str());
    const Shape qs{c.batch, c.heads, c.q_len, c.head_dim};
    const Shape ks{c.batch, c.kv_heads, c.kv_len, c.head_dim};
    Tensor q = test::rnd(qs, 1, dtype).cuda(), k = test::rnd(ks, 2, dtype).cuda();
    Tensor v = test::rnd(ks, 3, dtype).cuda(), go = test::rnd(qs, 4, dtype).cuda();
    Tensor out = poisoned(qs, dtype), lse = poisoned({c.batch, c.heads, c.q_len}, kFloat32);
    const AttentionArgs a = args_of(c);
    EXPECT_FALSE(backend::flash_attention_kernels[kCUDA](a, out, lse, q, k, v));
    Tensor dq = poisoned(qs, dtype), dk = poisoned(ks, dtype), dv = poisoned(ks, dtype);
    EXPECT_FALSE(
        backend::flash_attention_backward_kernels[kCUDA](a, dq, dk, dv, go, q, k, v, out, lse));
    for (const Tensor& t : {out, lse, dq, dk, dv})
      EXPECT_EQ(sum(isnan(t).to(kInt64)).item<int64_t>(), t.numel())
          << "a refused call wrote its outputs";
  };
  Case c;
  c.q_len = 40;
  c.kv_len = 40;
  c.head_dim = 64;
  refused(c, kFloat32);
  c.head_dim = 80;
  refused(c, kBFloat16);
  c.head_dim = 128;
  c.kv_len = 0;  // no key at all: the op composes it
  refused(c, kFloat16);
}

}  // namespace
