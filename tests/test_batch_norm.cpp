// batch_norm: closed-form values, running statistics, gradients (training and inference),
// agreement with PyTorch, errors.
#include <cmath>

#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;

namespace {

Tensor t64(std::vector<double> v, const Shape& s) { return tensor(v, s); }
Tensor u32(const Shape& s, uint64_t seed, double lo = -1, double hi = 1) {
  return test::uniform(s, seed, lo, hi, kFloat32);
}

}  // namespace

TEST(BatchNorm, TrainingClosedForm) {
  Tensor x = t64({1, 2, 3, 4}, {4, 1});  // mean 2.5, biased variance 1.25, unbiased 5/3
  Tensor rm = zeros({1}, kFloat64), rv = ones({1}, kFloat64);
  Tensor w = t64({2}, {1}), b = t64({1}, {1});
  Tensor y = batch_norm(x, rm, rv, w, b, true, 0.1, 0.0);
  double s = 1 / std::sqrt(1.25);
  EXPECT_TRUE(test::all_close(y, t64({1 - 3 * s, 1 - s, 1 + s, 1 + 3 * s}, {4, 1})));
  EXPECT_TRUE(test::all_close(rm, t64({0.25}, {1})));
  EXPECT_TRUE(test::all_close(rv, t64({0.9 + 0.1 * 5 / 3.0}, {1})));
}

TEST(BatchNorm, InferenceClosedForm) {
  Tensor x = t64({1, 2, 3, 4, 5, 6}, {1, 2, 3});  // [N=1, C=2, L=3]
  Tensor rm = t64({2, 5}, {2}), rv = t64({4, 0.25}, {2});
  Tensor y = batch_norm(x, rm, rv, Tensor(), t64({0, 10}, {2}), false, 0.1, 0.0);
  EXPECT_TRUE(test::all_close(y, t64({-0.5, 0, 0.5, 8, 10, 12}, {1, 2, 3})));
  EXPECT_TRUE(test::all_close(rm, t64({2, 5}, {2})));  // untouched in inference
  EXPECT_TRUE(test::all_close(rv, t64({4, 0.25}, {2})));
}

TEST(BatchNorm, RunningStatsOverSteps) {
  // Three training steps on [4, 3, 2, 2] batches; expected stats computed with mean/var ...
  std::vector<Tensor> xs = {test::uniform({4, 3, 2, 2}, 1), test::uniform({4, 3, 2, 2}, 2, 0, 3),
                            test::uniform({4, 3, 2, 2}, 3, -2, 1)};
  Tensor rm = zeros({3}, kFloat64), rv = ones({3}, kFloat64);
  Tensor em = zeros({3}, kFloat64), ev = ones({3}, kFloat64);
  const double m = 0.3;
  for (const Tensor& x : xs) {
    batch_norm(x, rm, rv, Tensor(), Tensor(), true, m);
    em = add(mul(em, 1 - m), mul(mean(x, {0, 2, 3}), m));
    ev = add(mul(ev, 1 - m), mul(var(x, {0, 2, 3}, 1), m));
  }
  EXPECT_TRUE(test::all_close(rm, em, 1e-12, 1e-12));
  EXPECT_TRUE(test::all_close(rv, ev, 1e-12, 1e-12));
  // ... and by PyTorch
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  test::TorchResult ref = oracle.run(
      "(lambda rm, rv: [F.batch_norm(x, rm, rv, training=True, momentum=0.3) for x in (a, b, c)]"
      " and torch.cat([rm, rv]))(torch.zeros(3, dtype=a.dtype), torch.ones(3, dtype=a.dtype))",
      xs);
  EXPECT_TRUE(test::all_close(rm, ref.out.narrow(0, 0, 3), 1e-12, 1e-12));
  EXPECT_TRUE(test::all_close(rv, ref.out.narrow(0, 3, 3), 1e-12, 1e-12));
  // The update is not recorded: running stats never require grad.
  Tensor x = test::uniform({4, 3}, 4).requires_grad_();
  Tensor rm2 = zeros({3}, kFloat64);
  batch_norm(x, rm2, Tensor(), Tensor(), Tensor(), true);
  EXPECT_FALSE(rm2.requires_grad());
  EXPECT_TRUE(test::all_close(rm2, mul(mean(x.detach(), {0}), 0.1)));
}

TEST(BatchNorm, Gradcheck) {
  Tensor w = test::uniform({3}, 10, 0.5, 1.5).requires_grad_();
  Tensor b = test::uniform({3}, 11).requires_grad_();
  for (Shape s : {Shape{5, 3}, Shape{2, 3, 2, 3}, Shape{3, 3, 4}}) {
    Tensor x = test::uniform(s, 12).requires_grad_();
    EXPECT_TRUE(test::gradcheck(
        [](auto& v) { return batch_norm(v[0], Tensor(), Tensor(), v[1], v[2], true); }, {x, w, b}))
        << to_string(s);
    EXPECT_TRUE(test::gradcheck(
        [](auto& v) { return batch_norm(v[0], Tensor(), Tensor(), Tensor(), Tensor(), true); }, {x}))
        << to_string(s);
    Tensor rm = test::uniform({3}, 13), rv = test::uniform({3}, 14, 0.5, 2);
    EXPECT_TRUE(test::gradcheck(
        [&](auto& v) { return batch_norm(v[0], rm, rv, v[1], v[2], false); }, {x, w, b}))
        << to_string(s);
  }
}

TEST(BatchNorm, MatchesTorch) {
  std::vector<Tensor> inputs = {
      u32({8, 3, 5, 5}, 1),
      u32({4, 5, 6, 3}, 2, -2, 3).permute({0, 3, 1, 2}),  // non-contiguous [4, 3, 5, 6]
      u32({6, 7}, 3).t().slice(1, 0, 3),                  // non-contiguous [7, 3]
      u32({5, 3, 9}, 4),
  };
  for (const Tensor& x : inputs) {
    Tensor w = u32({3}, 5, 0.5, 1.5), b = u32({3}, 6), rm = u32({3}, 7), rv = u32({3}, 8, 0.5, 2);
    EXPECT_TRUE(test::matches_torch(
        "F.batch_norm(a, None, None, b, c, training=True)", {x, w, b},
        [](auto& v) { return batch_norm(v[0], Tensor(), Tensor(), v[1], v[2], true); }))
        << to_string(x.shape());
    // running stats passed along (updated on copies on both sides; output unaffected)
    EXPECT_TRUE(test::matches_torch(
        "F.batch_norm(a, b.detach().clone(), c.detach().clone(), training=True, momentum=0.2)",
        {x, rm, rv},
        [](auto& v) {
          return batch_norm(v[0], v[1].detach().clone(), v[2].detach().clone(), Tensor(), Tensor(),
                            true, 0.2);
        }))
        << to_string(x.shape());
    EXPECT_TRUE(test::matches_torch(
        "F.batch_norm(a, b.detach(), c.detach(), d, e, training=False, eps=1e-3)", {x, rm, rv, w, b},
        [](auto& v) {
          return batch_norm(v[0], v[1].detach(), v[2].detach(), v[3], v[4], false, 0.1, 1e-3);
        }))
        << to_string(x.shape());
  }
  // many channels and elements: channels split across threads
  Tensor big = u32({16, 32, 12, 12}, 9);
  EXPECT_TRUE(test::matches_torch("F.batch_norm(a, None, None, training=True)", {big},
                                  [](auto& v) { return batch_norm(v[0], Tensor(), Tensor(), Tensor(), Tensor(), true); }));
}

TEST(BatchNorm, BatchNormReluMatchesTorch) {
  // relu(bn(x) + residual): what ResNet blocks compute (fused on CUDA, composed here).
  Tensor x = u32({4, 3, 5, 5}, 20), r = u32({4, 3, 5, 5}, 21);
  Tensor w = u32({3}, 22, 0.5, 1.5), b = u32({3}, 23);
  EXPECT_TRUE(test::matches_torch(
      "F.relu(F.batch_norm(a, None, None, b, c, training=True) + d)", {x, w, b, r},
      [](auto& v) {
        return batch_norm_relu(v[0], Tensor(), Tensor(), v[1], v[2], true, 0.1, 1e-5, v[3]);
      }));
  EXPECT_TRUE(test::matches_torch(
      "F.relu(F.batch_norm(a, None, None, b, c, training=True))", {x, w, b}, [](auto& v) {
        return batch_norm_relu(v[0], Tensor(), Tensor(), v[1], v[2], true);
      }));
}

TEST(BatchNorm, BatchNormReluGradcheckAndErrors) {
  Tensor x = test::uniform({3, 2, 2, 3}, 24).requires_grad_();
  Tensor r = test::uniform({3, 2, 2, 3}, 25).requires_grad_();
  Tensor w = test::uniform({2}, 26, 0.5, 1.5).requires_grad_();
  Tensor b = test::uniform({2}, 27).requires_grad_();
  EXPECT_TRUE(test::gradcheck(
      [](auto& v) {
        return batch_norm_relu(v[0], Tensor(), Tensor(), v[1], v[2], true, 0.1, 1e-5, v[3]);
      },
      {x, w, b, r}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] { batch_norm_relu(x, Tensor(), Tensor(), w, b, true, 0.1, 1e-5, r.narrow(0, 0, 2)); },
      {"batch_norm_relu", "residual", "[3, 2, 2, 3]", "[2, 2, 2, 3]"}));
}

TEST(BatchNorm, HalfPrecision) {
  // Bounds from the arithmetic, per element, for eps = test::epsilon(t). The 16-bit input is x
  // rounded once (|dx| <= eps/2 |x|); the statistics come from it in float32. So the per-channel
  // mean moves by at most eps/2 m (m = mean |x|), each deviation x - mean by at most
  // eps/2 (|x| + m), the variance by at most eps c (c = mean(|x - mean| (|x| + m))) and invstd
  // relatively by half of that over the variance. Through y = xhat w + b:
  //   |y - ref| <= |w| (invstd eps/2 (|x| + m) + |xhat| eps c / (2 var)) + eps/2 |ref|,
  // the last term the output's rounding; (1 + eps) covers the products of two small terms.
  Tensor x = u32({4, 3, 5, 5}, 1), w = u32({3}, 2, 0.5, 1.5), b = u32({3}, 3);
  Tensor ref = batch_norm(x, Tensor(), Tensor(), w, b, true);
  const std::vector<int64_t> dims = {0, 2, 3};
  auto per_channel = [](const Tensor& v) { return v.view({1, 3, 1, 1}); };
  Tensor mu = per_channel(mean(x, dims)), m = per_channel(mean(abs(x), dims));
  Tensor dev = sub(x, mu), var = mean(mul(dev, dev), dims, true);
  Tensor invstd = rsqrt(add(var, 1e-5)), xhat = mul(dev, invstd);
  Tensor c = mean(mul(abs(dev), add(abs(x), m)), dims, true);
  for (DType t : {kFloat16, kBFloat16}) {
    SCOPED_TRACE(dtype_name(t));
    const double eps = test::epsilon(t);
    Tensor rm = zeros({3});  // float32 running stats with a 16-bit input, as torch allows
    Tensor y = batch_norm(x.to(t), rm, Tensor(), w, b, true);
    EXPECT_EQ(y.dtype(), t);
    Tensor moved = add(mul(invstd, mul(add(abs(x), m), eps / 2)),
                       mul(abs(xhat), div(mul(c, eps / 2), var)));
    Tensor bound = add(mul(abs(per_channel(w)), moved), mul(abs(ref), eps / 2));
    EXPECT_TRUE(test::within(y, ref, mul(bound, 1 + eps)));
    // running_mean = 0.1 * mean(rounded x): at most 0.1 * eps/2 * m away, plus float32 sums.
    Tensor rm_bound = add(mul(m.flatten(), 0.1 * eps / 2), 1e-7);
    EXPECT_TRUE(test::within(rm, mul(mean(x, dims), 0.1), rm_bound));
  }
}

TEST(BatchNorm, Errors) {
  Tensor x = u32({4, 3}, 1);
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] { batch_norm(x, Tensor(), Tensor(), u32({4}, 2), Tensor(), true); },
      {"batch_norm", "weight of shape [3]", "got shape [4]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] { batch_norm(x, u32({3, 1}, 2), Tensor(), Tensor(), Tensor(), true); },
      {"batch_norm", "running_mean of shape [3]", "got shape [3, 1]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] { batch_norm(u32({4}, 1), Tensor(), Tensor(), Tensor(), Tensor(), true); },
      {"batch_norm", "at least 2 dims", "got shape [4]"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { batch_norm(u32({1, 3}, 1), Tensor(), Tensor(), Tensor(), Tensor(), true); },
      {"batch_norm", "more than 1 value per channel", "got input shape [1, 3]"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] { batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false); },
      {"batch_norm", "running_mean and running_var in inference mode", "no running_mean"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] { batch_norm(x.to(kInt64), Tensor(), Tensor(), Tensor(), Tensor(), true); },
      {"batch_norm", "floating-point", "got int64"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] { batch_norm(x, Tensor(), Tensor(), u32({3}, 2).to(kInt32), Tensor(), true); },
      {"batch_norm", "floating-point 'weight'", "got int32"}));
}
