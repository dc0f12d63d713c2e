// scaled_dot_product_attention on CUDA: the composed path against the CPU (every floating
// dtype, masks, GQA, strided inputs); the fused path for 16-bit inputs (head dims 64 and 128,
// causal or not, lengths 1 to 1000, GQA) against the float32 composition of the same values on
// the CPU, forward and gradients; that the fused path ran and kept no [L, S] scores; dropout
// dropping the same elements fused and composed, and fresh ones on each CUDA graph replay; the
// transposed key reaching the product kernel without a copy; and bad input. Skipped without a
// GPU.
#include <algorithm>
#include <string>
#include <vector>

#include "support/cuda_check.h"

using namespace anvil;

namespace {

using test::close;
using test::Tol;

class CudaAttention : public test::CudaTest {};

using Sdpa = std::function<Tensor(const Tensor& q, const Tensor& k, const Tensor& v)>;

Sdpa plain(bool causal = false, bool gqa = false, double dropout_p = 0) {
  return [=](const Tensor& q, const Tensor& k, const Tensor& v) {
    return scaled_dot_product_attention(q, k, v, {}, dropout_p, causal, std::nullopt, gqa);
  };
}

// One run: q, k, v as leaves on `device` (converted to `dtype` when given), the output, and
// the gradients of sum(out * g). With `bthd` the leaves are [B, T, H, D] tensors that f sees
// transposed to [B, H, T, D] (strided views on the device, as a Transformer makes them).
struct Outcome {
  Tensor out, gq, gk, gv;
};

Outcome run(const Sdpa& f, const std::vector<Tensor>& qkv, const Tensor& g, Device device,
            std::optional<DType> dtype = std::nullopt, bool bthd = false) {
  std::vector<Tensor> leaves, views;
  for (const Tensor& t : qkv) {
    Tensor x = dtype ? t.to(*dtype) : t;
    leaves.push_back(x.to(device).detach().requires_grad_());
    views.push_back(bthd ? leaves.back().transpose(1, 2) : leaves.back());
  }
  if (device.is_cuda()) test::poison_device_cache();
  Outcome r;
  r.out = f(views[0], views[1], views[2]);
  if (device.is_cuda()) test::poison_device_cache();
  r.out.backward(dtype ? g.to(*dtype).to(device) : g.to(device));
  r.gq = leaves[0].grad();
  r.gk = leaves[1].grad();
  r.gv = leaves[2].grad();
  return r;
}

// |actual - expected| <= rel * (|expected| + max |expected|): bounds for a 16-bit result
// against a float32 one, where errors scale with the values summed, not with each element.
// `floor`: the least scale the absolute tolerance is taken at, for references that are zero
// only because terms of that size cancel.
::testing::AssertionResult near(const Tensor& actual, const Tensor& expected, double rel,
                                const std::string& what, double floor = 0) {
  Tensor a = actual.cpu().to(kFloat32), e = expected.cpu().to(kFloat32);
  const double scale = e.numel() ? amax(abs(e), {}).item<double>() : 0;
  auto r = test::all_close(a, e, rel, rel * std::max(scale, floor));
  if (!r) return ::testing::AssertionFailure() << what << ": " << r.message();
  return r;
}

// A 16-bit fused result against the float32 reference. The q and k gradients are
// dS = P * (dP - rowsum(dO * O)) contracted with k or q: a query that sees a single key has
// dS = 0 exactly in the reference, while 16-bit rounding leaves residues of dP's size, which is
// dO V^T's, as grad v's (P^T dO) is.
void expect_near(const Outcome& gpu, const Outcome& ref) {
  const double gv_scale = amax(abs(ref.gv.cpu().to(kFloat32)), {}).item<double>();
  EXPECT_TRUE(near(gpu.out, ref.out, 1e-2, "output"));
  EXPECT_TRUE(near(gpu.gq, ref.gq, 2e-2, "grad q", 1e-3 * gv_scale));
  EXPECT_TRUE(near(gpu.gk, ref.gk, 2e-2, "grad k", 1e-3 * gv_scale));
  EXPECT_TRUE(near(gpu.gv, ref.gv, 2e-2, "grad v"));
}

Tensor rnd(const Shape& shape, uint64_t seed, DType dt = kFloat32) {
  return test::uniform(shape, seed, -1, 1, dt);
}

Tol tol_for(DType dt) {
  switch (dt) {
    case kFloat64:
      return {1e-10, 1e-12};
    case kFloat32:
      return {1e-4, 1e-5};
    default:
      return {1e-2, 1e-2};
  }
}

}  // namespace

// ---- the composed path ---------------------------------------------------------------------

TEST_F(CudaAttention, ComposedMatchesCpu) {
  // Masks keep the fused kernel out, so these run the composition on both devices.
  struct Case {
    std::string what;
    Shape q, k, v;
    Tensor mask;
    bool gqa;
  };
  std::vector<bool> keep(7 * 5, true);
  for (int j = 0; j < 5; ++j) keep[size_t(2 * 5 + j)] = false;  // a fully masked row
  const std::vector<Case> cases = {
      {"bool mask [L, S]", {2, 3, 7, 3}, {2, 3, 5, 3}, {2, 3, 5, 4}, tensor(keep, {7, 5}), false},
      {"additive mask [N, 1, L, S]",
       {2, 3, 7, 8},
       {2, 3, 5, 8},
       {2, 3, 5, 8},
       rnd({2, 1, 7, 5}, 1),
       false},
      {"GQA with a bool mask",
       {2, 6, 17, 16},
       {2, 2, 33, 16},
       {2, 2, 33, 16},
       gt(rnd({17, 33}, 2), -0.8),
       true},
      {"3-D, additive", {4, 9, 5}, {4, 11, 5}, {4, 11, 7}, rnd({9, 11}, 3), false},
  };
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kFloat16})
    for (const Case& c : cases) {
      SCOPED_TRACE(c.what + " " + dtype_name(dt));
      Tensor mask = c.mask.is_floating_point() && dt != kFloat32 ? c.mask.to(dt) : c.mask;
      std::vector<Tensor> qkv = {rnd(c.q, 4, dt), rnd(c.k, 5, dt), rnd(c.v, 6, dt)};
      Shape out_shape = c.q;
      out_shape.back() = c.v.back();
      Tensor g = rnd(out_shape, 7, dt);
      const bool gqa = c.gqa;
      auto f = [mask, gqa](const Tensor& q, const Tensor& k, const Tensor& v) {
        return scaled_dot_product_attention(q, k, v, mask.to(q.device()), 0, false, std::nullopt,
                                            gqa);
      };
      Outcome cpu = run(f, qkv, g, kCPU), gpu = run(f, qkv, g, kCUDA);
      const Tol tol = tol_for(dt);
      EXPECT_TRUE(close(gpu.out, cpu.out, tol, "output"));
      EXPECT_TRUE(close(gpu.gq, cpu.gq, tol, "grad q"));
      EXPECT_TRUE(close(gpu.gk, cpu.gk, tol, "grad k"));
      EXPECT_TRUE(close(gpu.gv, cpu.gv, tol, "grad v"));
    }
}

TEST_F(CudaAttention, Float32AndFloat64MatchCpu) {
  // Whatever path CUDA takes for the wide dtypes (the composition, unless a kernel takes them).
  for (DType dt : {kFloat32, kFloat64})
    for (bool causal : {false, true}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + (causal ? " causal" : ""));
      // [B, T, H, D] leaves viewed as [B, H, T, D].
      std::vector<Tensor> qkv = {rnd({2, 7, 4, 16}, 1, dt), rnd({2, 9, 4, 16}, 2, dt),
                                 rnd({2, 9, 4, 16}, 3, dt)};
      Tensor g = rnd({2, 4, 7, 16}, 4, dt);
      Outcome cpu = run(plain(causal), qkv, g, kCPU, std::nullopt, true);
      Outcome gpu = run(plain(causal), qkv, g, kCUDA, std::nullopt, true);
      EXPECT_TRUE(close(gpu.out, cpu.out, tol_for(dt), "output"));
      EXPECT_TRUE(close(gpu.gq, cpu.gq, tol_for(dt), "grad q"));
      EXPECT_TRUE(close(gpu.gk, cpu.gk, tol_for(dt), "grad k"));
      EXPECT_TRUE(close(gpu.gv, cpu.gv, tol_for(dt), "grad v"));
    }
}

// ---- the fused path ------------------------------------------------------------------------

namespace {

struct FusedCase {
  int64_t b, h, hkv, tq, tk, d;
  bool causal;
};

std::string describe(const FusedCase& c, DType dt) {
  return std::string(dtype_name(dt)) + " B=" + std::to_string(c.b) + " H=" + std::to_string(c.h) +
         " Hkv=" + std::to_string(c.hkv) + " Tq=" + std::to_string(c.tq) +
         " Tk=" + std::to_string(c.tk) + " D=" + std::to_string(c.d) + (c.causal ? " causal" : "");
}

std::vector<FusedCase> fused_cases() {
  std::vector<FusedCase> cases;
  const std::pair<int64_t, int64_t> lengths[] = {{1, 1},    {17, 17},  {200, 200}, {1000, 1000},
                                                 {17, 200}, {200, 17}, {1, 1000}};
  for (int64_t d : {64, 128})
    for (bool causal : {false, true}) {
      for (auto [tq, tk] : lengths) cases.push_back({2, 2, 2, tq, tk, d, causal});
      cases.push_back({1, 8, 2, 200, 200, d, causal});  // GQA, 4 query heads per kv head
      cases.push_back({2, 4, 1, 17, 33, d, causal});    // one kv head for all
    }
  return cases;
}

// A case's q, k, v and output gradient as `dt` values in [-1, 1] (q scaled up so that the
// attention is not nearly uniform).
std::vector<Tensor> fused_inputs(const FusedCase& c, DType dt, uint64_t seed) {
  return {mul(rnd({c.b, c.h, c.tq, c.d}, seed), 3.0).to(dt),
          rnd({c.b, c.hkv, c.tk, c.d}, seed + 1, dt), rnd({c.b, c.hkv, c.tk, c.d}, seed + 2, dt),
          rnd({c.b, c.h, c.tq, c.d}, seed + 3, dt)};
}

}  // namespace

TEST_F(CudaAttention, FusedMatchesFloat32Composition) {
  // The reference: the same 16-bit values composed in float32 on the CPU.
  for (DType dt : {kBFloat16, kFloat16})
    for (const FusedCase& c : fused_cases()) {
      SCOPED_TRACE(describe(c, dt));
      std::vector<Tensor> in = fused_inputs(c, dt, 10);
      const Tensor g = in.back();
      in.pop_back();
      const Sdpa f = plain(c.causal, c.hkv != c.h);
      Outcome ref = run(f, in, g.to(kFloat32), kCPU, kFloat32);
      Outcome gpu = run(f, in, g, kCUDA);
      ASSERT_EQ(gpu.out.dtype(), dt);
      expect_near(gpu, ref);
    }
}

TEST_F(CudaAttention, FusedTakesStridedAnd3DInputs) {
  for (DType dt : {kBFloat16, kFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    // [B, T, H, D] leaves viewed as [B, H, T, D]; 3-D [N, L, E] (one head each).
    struct Strided {
      std::vector<Tensor> in;
      Shape out;
      bool bthd;
    };
    const std::vector<Strided> inputs = {
        {{rnd({2, 37, 4, 64}, 1, dt), rnd({2, 45, 4, 64}, 2, dt), rnd({2, 45, 4, 64}, 3, dt)},
         {2, 4, 37, 64},
         true},
        {{rnd({3, 29, 128}, 4, dt), rnd({3, 31, 128}, 5, dt), rnd({3, 31, 128}, 6, dt)},
         {3, 29, 128},
         false},
    };
    for (const Strided& c : inputs)
      for (bool causal : {false, true}) {
        Tensor g = rnd(c.out, 7, dt);
        Outcome ref = run(plain(causal), c.in, g.to(kFloat32), kCPU, kFloat32, c.bthd);
        Outcome gpu = run(plain(causal), c.in, g, kCUDA, std::nullopt, c.bthd);
        expect_near(gpu, ref);
      }
  }
}

TEST_F(CudaAttention, FusedPathRunsWithoutScores) {
  // The cases the flash kernel is written for. Its node names the fused path (the composition
  // ends in a dtype cast), and without autograd its peak memory stays far below the float32
  // [B, H, L, S] scores the composition would allocate.
  for (DType dt : {kBFloat16, kFloat16})
    for (int64_t d : {64, 128})
      for (bool causal : {false, true}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " D=" + std::to_string(d) +
                     (causal ? " causal" : ""));
        const int64_t b = 1, h = 4, t = 1000;
        Tensor q = rnd({b, h, t, d}, 1, dt).cuda().requires_grad_();
        Tensor k = rnd({b, h, t, d}, 2, dt).cuda(), v = rnd({b, h, t, d}, 3, dt).cuda();
        Tensor out = scaled_dot_product_attention(q, k, v, {}, 0, causal);
        ASSERT_TRUE(out.grad_fn());
        EXPECT_EQ(out.grad_fn()->name(), "ScaledDotProductAttentionBackward");
        // GQA too.
        Tensor kg = rnd({b, 1, t, d}, 4, dt).cuda(), vg = rnd({b, 1, t, d}, 5, dt).cuda();
        Tensor grouped = scaled_dot_product_attention(q, kg, vg, {}, 0, causal, std::nullopt, true);
        EXPECT_EQ(grouped.grad_fn()->name(), "ScaledDotProductAttentionBackward");

        NoGradGuard no_grad;
        out = Tensor();
        grouped = Tensor();
        const int64_t before = cuda_memory_stats().allocated_bytes;
        cuda_reset_peak_memory_stats();
        Tensor y = scaled_dot_product_attention(q.detach(), k, v, {}, 0, causal);
        const int64_t peak = cuda_memory_stats().peak_allocated_bytes - before;
        const int64_t scores_bytes = b * h * t * t * 4;
        EXPECT_LT(peak, scores_bytes / 4) << "peak " << peak << " bytes";
      }
}

// ---- dropout -------------------------------------------------------------------------------

TEST_F(CudaAttention, FusedDropoutDropsWhatTheCompositionDrops) {
  // With v the identity (S = Ev = D = 64), the output row i is the dropped, rescaled
  // probabilities of query i: zero exactly where an element was dropped. An all-true mask
  // sends the same call through the composition.
  const double p = 0.3;
  for (DType dt : {kBFloat16, kFloat16})
    for (bool causal : {false, true}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + (causal ? " causal" : ""));
      const int64_t b = 2, h = 3, t = 64;
      Tensor q = rnd({b, h, t, t}, 1, dt).cuda(), k = rnd({b, h, t, t}, 2, dt).cuda();
      Tensor v = eye(t, t, TensorOptions(dt).device(kCUDA)).expand({b, h, t, t}).contiguous();
      Tensor all = causal ? tril(ones({t, t}, TensorOptions(kBool).device(kCUDA)))
                          : ones({t, t}, TensorOptions(kBool).device(kCUDA));
      manual_seed(2024);
      Tensor fused = scaled_dot_product_attention(q, k, v, {}, p, causal);
      const uint64_t offset = default_generator(kCUDA).offset();
      manual_seed(2024);
      Tensor composed = scaled_dot_product_attention(q, k, v, all, p);
      EXPECT_EQ(default_generator(kCUDA).offset(), offset);
      manual_seed(2024);
      Tensor on_cpu = scaled_dot_product_attention(q.cpu(), k.cpu(), v.cpu(), all.cpu(), p);
      EXPECT_TRUE(equal(eq(fused, 0.0).cpu(), eq(composed, 0.0).cpu()));
      EXPECT_TRUE(equal(eq(fused, 0.0).cpu(), eq(on_cpu, 0.0)));
      EXPECT_TRUE(near(fused, composed, 1e-2, "dropped output"));
      // About p of the visible probabilities were dropped.
      const double visible = causal ? double(b * h * t * (t + 1) / 2) : double(b * h * t * t);
      const double dropped =
          double(sum(eq(fused, 0.0)).item<int64_t>()) - (double(b * h * t * t) - visible);
      EXPECT_NEAR(dropped / visible, p, 0.02);
    }
}

TEST_F(CudaAttention, FusedDropoutGradientsMatchTheComposition) {
  const double p = 0.2;
  for (DType dt : {kBFloat16, kFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    const FusedCase c{2, 4, 2, 77, 90, 64, true};
    std::vector<Tensor> in = fused_inputs(c, dt, 20);
    const Tensor g = in.back();
    in.pop_back();
    manual_seed(5);
    Outcome gpu = run(plain(true, true, p), in, g, kCUDA);
    // The composition of the same float32 values with the same draws, on the CPU.
    manual_seed(5);
    Tensor keep = tril(ones({c.tq, c.tk}, kBool));
    Outcome ref = run(
        [&](const Tensor& q, const Tensor& k, const Tensor& v) {
          return scaled_dot_product_attention(q, k, v, keep, p, false, std::nullopt, true);
        },
        in, g.to(kFloat32), kCPU, kFloat32);
    expect_near(gpu, ref);
  }
}

TEST_F(CudaAttention, GraphReplaysDrawFreshDropoutAsEagerStepsDo) {
  const double p = 0.25;
  for (DType dt : {kBFloat16, kFloat32}) {  // the fused path, and the composition
    SCOPED_TRACE(dtype_name(dt));
    Tensor q = rnd({2, 4, 50, 64}, 1, dt).cuda(), k = rnd({2, 4, 60, 64}, 2, dt).cuda();
    Tensor v = rnd({2, 4, 60, 64}, 3, dt).cuda(), up = rnd({2, 4, 50, 64}, 4, dt).cuda();
    manual_seed(17);
    std::vector<Tensor> eager_out, eager_grad;
    for (int step = 0; step < 2; ++step) {
      Tensor leaf = q.detach().requires_grad_();
      Tensor y = scaled_dot_product_attention(leaf, k, v, {}, p, true);
      eager_out.push_back(y.detach().cpu());
      eager_grad.push_back(autograd::grad({y}, {leaf}, {up})[0].cpu());
    }
    const uint64_t eager_offset = default_generator(kCUDA).offset();

    manual_seed(17);
    Tensor leaf = q.detach().requires_grad_();
    CUDAGraph graph;
    graph.capture_begin();
    Tensor y = scaled_dot_product_attention(leaf, k, v, {}, p, true);
    Tensor gq = autograd::grad({y}, {leaf}, {up})[0];
    graph.capture_end();
    EXPECT_EQ(default_generator(kCUDA).offset(), 0u);  // capturing drew nothing
    for (int step = 0; step < 2; ++step) {
      graph.replay();
      EXPECT_TRUE(near(y, eager_out[size_t(step)], 1e-3, "replay output"));
      EXPECT_TRUE(near(gq, eager_grad[size_t(step)], 1e-2, "replay gradient"));
    }
    EXPECT_FALSE(near(eager_out[0], eager_out[1], 1e-3, "two eager steps"));
    EXPECT_EQ(default_generator(kCUDA).offset(), eager_offset);
  }
}

// ---- the products ---------------------------------------------------------------------------

TEST_F(CudaAttention, TransposedKeyReachesTheProductWithoutACopy) {
  // q k^T of [B, H, T, D] tensors allocates the product and nothing else: the transposed view
  // reaches the kernel as a transpose flag (a copy of the key would be a second allocation).
  // Integer operands, whose kernel needs no workspace, make the count exact; the op layer
  // hands every dtype's operands over the same way.
  Tensor q = mul(rnd({2, 4, 64, 32}, 1), 8.0).to(kInt32).cuda();
  Tensor k = mul(rnd({2, 4, 96, 32}, 2), 8.0).to(kInt32).cuda();
  const int64_t before = cuda_memory_stats().num_allocs;
  Tensor scores = matmul(q, k.transpose(-2, -1));
  EXPECT_EQ(cuda_memory_stats().num_allocs - before, 1);
  EXPECT_TRUE(equal(scores.cpu(), matmul(q.cpu(), k.cpu().transpose(-2, -1).contiguous())));
  // The gradient products take the transposed views the same way (float32 here).
  Tensor qf = rnd({2, 4, 64, 32}, 3).cuda().requires_grad_(), kf = rnd({2, 4, 96, 32}, 4).cuda();
  Tensor s = matmul(qf, kf.transpose(-2, -1));
  Tensor up = rnd({2, 4, 64, 96}, 5).cuda();
  s.backward(up);
  EXPECT_TRUE(close(qf.grad(), matmul(up.cpu(), kf.cpu()), {1e-4, 1e-5}));
}

// ---- bad input -----------------------------------------------------------------------------

TEST_F(CudaAttention, TensorsOnDifferentDevices) {
  Tensor q = zeros({2, 3, 4}, TensorOptions().device(kCUDA)), k = zeros({2, 5, 4});
  EXPECT_TRUE(test::throws_with<DeviceError>(
      [&] { scaled_dot_product_attention(q, k, k.cuda()); },
      {"scaled_dot_product_attention", "one device", "cuda:0", "cpu"}));
  EXPECT_TRUE(test::throws_with<DeviceError>(
      [&] {
        scaled_dot_product_attention(q, k.cuda(), k.cuda(), ones({3, 5}, kBool));
      },
      {"scaled_dot_product_attention", "one device"}));
}
