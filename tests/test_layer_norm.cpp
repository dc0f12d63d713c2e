// layer_norm and rms_norm: closed-form values, gradients, agreement with PyTorch (odd shapes,
// non-contiguous views, 16-bit inputs), autocast, determinism, errors; and the LayerNorm and
// RMSNorm modules against torch.nn's.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "anvil/amp/amp.h"
#include "anvil/nn/layer_norm.h"
#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;

namespace {

Tensor t64(std::vector<double> v, const Shape& s) { return tensor(v, s); }
Tensor u32(const Shape& s, uint64_t seed, double lo = -1, double hi = 1) {
  return test::uniform(s, seed, lo, hi, kFloat32);
}

// Every element's bits, for bitwise comparisons.
std::vector<float> bits(const Tensor& t) { return t.detach().to(kFloat32).to_vector<float>(); }

}  // namespace

// ---- values --------------------------------------------------------------------------------

TEST(LayerNorm, ClosedForm) {
  // Row [1, 2, 3, 4]: mean 2.5, biased variance 1.25; row [2, 2, 2, 2]: variance 0 (0 / 0
  // without eps, NaN as in torch; 0 with it).
  Tensor x = t64({1, 2, 3, 4, 2, 2, 2, 2}, {2, 4});
  const double s = 1 / std::sqrt(1.25), n = std::nan("");
  EXPECT_TRUE(test::all_close(layer_norm(x, {4}, {}, {}, 0.0),
                              t64({-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s, n, n, n, n}, {2, 4}),
                              1e-12, 1e-14));
  EXPECT_TRUE(test::all_close(layer_norm(x.narrow(0, 1, 1), {4}), zeros({1, 4}, kFloat64)));
  // eps adds to the variance; weight scales and bias shifts per element.
  Tensor w = t64({1, 2, 3, 4}, {4}), b = t64({0, 0, 1, -1}, {4});
  const double se = 1 / std::sqrt(1.25 + 0.5);
  EXPECT_TRUE(test::all_close(layer_norm(x, {4}, w, b, 0.5),
                              t64({-1.5 * se, -1.0 * se, 1 + 1.5 * se, -1 + 6 * se, 0, 0, 1, -1},
                                  {2, 4}),
                              1e-12, 1e-14));
  // normalized_shape {2, 2} normalises each [2, 2] block as one row of 4.
  EXPECT_TRUE(test::all_close(layer_norm(x.view({2, 2, 2}), {2, 2}, {}, {}, 0.0),
                              layer_norm(x, {4}, {}, {}, 0.0).view({2, 2, 2}), 1e-14, 0));
  // Input of exactly normalized_shape: one row.
  EXPECT_TRUE(test::all_close(layer_norm(t64({1, 3}, {2}), {2}, {}, {}, 0.0), t64({-1, 1}, {2}),
                              1e-12, 1e-14));
  // No rows, or rows of nothing: an empty result of the input's shape.
  EXPECT_EQ(layer_norm(zeros({0, 5}), {5}).shape(), (Shape{0, 5}));
  EXPECT_EQ(layer_norm(zeros({3, 0}), {0}).shape(), (Shape{3, 0}));
}

TEST(RmsNorm, ClosedForm) {
  // Row [3, 4]: mean of squares 12.5.
  Tensor x = t64({3, 4, -1, 1}, {2, 2});
  const double s = 1 / std::sqrt(12.5);
  EXPECT_TRUE(test::all_close(rms_norm(x, {2}, {}, 0.0), t64({3 * s, 4 * s, -1, 1}, {2, 2}),
                              1e-12, 1e-14));
  Tensor w = t64({2, -1}, {2});
  const double se = 1 / std::sqrt(12.5 + 0.25);
  EXPECT_TRUE(test::all_close(rms_norm(x, {2}, w, 0.25),
                              t64({6 * se, -4 * se, -2 / std::sqrt(1.25), -1 / std::sqrt(1.25)},
                                  {2, 2}),
                              1e-12, 1e-14));
  // eps unset: float64's machine epsilon for float64, float32's for float32 (and 16-bit).
  Tensor zero64 = zeros({1, 2}, kFloat64);
  Tensor tiny = t64({1e-9, 1e-9}, {1, 2});
  const double e64 = std::numeric_limits<double>::epsilon();
  const double e32 = std::numeric_limits<float>::epsilon();
  EXPECT_NEAR(rms_norm(tiny, {2}).data<double>()[0], 1e-9 / std::sqrt(1e-18 + e64), 1e-9);
  EXPECT_NEAR(rms_norm(tiny.to(kFloat32), {2}).to(kFloat64).data<double>()[0],
              1e-9 / std::sqrt(1e-18 + e32), 1e-9);
  EXPECT_TRUE(test::all_close(rms_norm(zero64, {2}), zero64));
}

// ---- gradients -----------------------------------------------------------------------------

TEST(LayerNorm, Gradcheck) {
  for (Shape ns : {Shape{4}, Shape{3, 4}}) {
    Tensor x = test::uniform({2, 3, 4}, 10, -2, 2).requires_grad_();
    Tensor w = test::uniform(ns, 11, 0.5, 1.5).requires_grad_();
    Tensor b = test::uniform(ns, 12).requires_grad_();
    EXPECT_TRUE(test::gradcheck([ns](auto& v) { return layer_norm(v[0], ns, v[1], v[2]); },
                                {x, w, b}))
        << to_string(ns);
    EXPECT_TRUE(test::gradcheck([ns](auto& v) { return layer_norm(v[0], ns, {}, {}, 1e-3); },
                                {x}))
        << to_string(ns);
    EXPECT_TRUE(test::gradcheck([ns](auto& v) { return layer_norm(v[0], ns, v[1]); }, {x, w}))
        << to_string(ns);
    // Parameters alone (the input needs no gradient).
    Tensor xc = x.detach();
    EXPECT_TRUE(test::gradcheck([ns, xc](auto& v) { return layer_norm(xc, ns, v[0], v[1]); },
                                {w, b}))
        << to_string(ns);
  }
}

TEST(RmsNorm, Gradcheck) {
  for (Shape ns : {Shape{5}, Shape{2, 5}}) {
    Tensor x = test::uniform({3, 2, 5}, 20, -2, 2).requires_grad_();
    Tensor w = test::uniform(ns, 21, 0.5, 1.5).requires_grad_();
    EXPECT_TRUE(test::gradcheck([ns](auto& v) { return rms_norm(v[0], ns, v[1]); }, {x, w}))
        << to_string(ns);
    EXPECT_TRUE(test::gradcheck([ns](auto& v) { return rms_norm(v[0], ns, {}, 0.1); }, {x}))
        << to_string(ns);
    Tensor xc = x.detach();
    EXPECT_TRUE(test::gradcheck([ns, xc](auto& v) { return rms_norm(xc, ns, v[0]); }, {w}))
        << to_string(ns);
  }
}

TEST(LayerNorm, NoRowsGiveZeroParameterGradients) {
  Tensor x = zeros({0, 3}).requires_grad_();
  Tensor w = ones({3}).requires_grad_(), b = zeros({3}).requires_grad_();
  sum(layer_norm(x, {3}, w, b)).backward();
  EXPECT_TRUE(test::all_close(w.grad(), zeros({3})));
  EXPECT_TRUE(test::all_close(b.grad(), zeros({3})));
  EXPECT_EQ(x.grad().shape(), (Shape{0, 3}));
  Tensor wr = ones({3}).requires_grad_();
  sum(rms_norm(zeros({2, 0, 3}), {3}, wr)).backward();
  EXPECT_TRUE(test::all_close(wr.grad(), zeros({3})));
}

// ---- against PyTorch -----------------------------------------------------------------------

TEST(LayerNorm, MatchesTorch) {
  struct Case {
    Tensor x;
    Shape ns;
    std::string ns_py;
  };
  std::vector<Case> cases = {
      {u32({3, 5, 7}, 1, -3, 3), {7}, "(7,)"},
      {u32({3, 5, 7}, 2, -3, 3), {5, 7}, "(5, 7)"},
      {u32({7}, 3, -3, 3), {7}, "(7,)"},
      {u32({5, 4}, 4, -3, 3).t(), {5}, "(5,)"},                      // transposed
      {u32({6, 10}, 5, -3, 3).slice(1, 1, 10, 3), {3}, "(3,)"},      // strided slice
      {u32({2, 3, 4, 5}, 6, -3, 3).permute({0, 3, 1, 2}), {3, 4}, "(3, 4)"},
      {u32({300, 200}, 7, -3, 3), {200}, "(200,)"},  // large enough to run on threads
      {add(u32({4, 33}, 8), 100.0), {33}, "(33,)"},  // a mean large against the spread
  };
  for (auto& c : cases) {
    const Shape ns = c.ns;
    const std::string what = to_string(c.x.shape()) + " over " + to_string(ns);
    Tensor w = u32(ns, 9, 0.5, 1.5), b = u32(ns, 10);
    EXPECT_TRUE(test::matches_torch("F.layer_norm(a, " + c.ns_py + ", b, c)", {c.x, w, b},
                                    [ns](auto& v) { return layer_norm(v[0], ns, v[1], v[2]); },
                                    {1e-4, 1e-5}))
        << what;
    EXPECT_TRUE(test::matches_torch("F.layer_norm(a, " + c.ns_py + ", eps=1e-3)", {c.x},
                                    [ns](auto& v) { return layer_norm(v[0], ns, {}, {}, 1e-3); },
                                    {1e-4, 1e-5}))
        << what;
    EXPECT_TRUE(test::matches_torch("F.layer_norm(a, " + c.ns_py + ", None, b)", {c.x, b},
                                    [ns](auto& v) { return layer_norm(v[0], ns, {}, v[1]); },
                                    {1e-4, 1e-5}))
        << what;
  }
  // A non-contiguous weight ([5, 7] as the transpose of a [7, 5]).
  Tensor wt = u32({7, 5}, 11, 0.5, 1.5).t();
  EXPECT_TRUE(test::matches_torch("F.layer_norm(a, (5, 7), b)", {u32({2, 5, 7}, 12), wt},
                                  [](auto& v) { return layer_norm(v[0], {5, 7}, v[1]); },
                                  {1e-4, 1e-5}));
}

TEST(RmsNorm, MatchesTorch) {
  struct Case {
    Tensor x;
    Shape ns;
    std::string ns_py;
  };
  std::vector<Case> cases = {
      {u32({3, 5, 7}, 1, -3, 3), {7}, "(7,)"},
      {u32({3, 5, 7}, 2, -3, 3), {5, 7}, "(5, 7)"},
      {u32({5, 4}, 4, -3, 3).t(), {5}, "(5,)"},
      {u32({6, 10}, 5, -3, 3).slice(1, 1, 10, 3), {3}, "(3,)"},
      {u32({300, 200}, 7, -3, 3), {200}, "(200,)"},
  };
  for (auto& c : cases) {
    const Shape ns = c.ns;
    const std::string what = to_string(c.x.shape()) + " over " + to_string(ns);
    Tensor w = u32(ns, 9, 0.5, 1.5);
    EXPECT_TRUE(test::matches_torch("F.rms_norm(a, " + c.ns_py + ", b)", {c.x, w},
                                    [ns](auto& v) { return rms_norm(v[0], ns, v[1]); },
                                    {1e-4, 1e-5}))
        << what;
    EXPECT_TRUE(test::matches_torch("F.rms_norm(a, " + c.ns_py + ", eps=1e-6)", {c.x},
                                    [ns](auto& v) { return rms_norm(v[0], ns, {}, 1e-6); },
                                    {1e-4, 1e-5}))
        << what;
  }
  // eps unset, on small values where it matters: float32's epsilon in float32, float64's in
  // float64, as torch.
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor x = test::uniform({4, 6}, 13, -1e-3, 1e-3, dt);
    EXPECT_TRUE(test::matches_torch("F.rms_norm(a, (6,))", {x},
                                    [](auto& v) { return rms_norm(v[0], {6}); }, {1e-4, 1e-6}))
        << dtype_name(dt);
  }
}

// 16-bit inputs compute in float32 and round once, as torch does: the outputs agree with
// torch's 16-bit op within a unit in the last place. The gradients are checked against the
// float64 computation on the same values, rounded once (torch's own 16-bit CPU backward sums
// the parameter gradients in a lower precision, up to a few units off), with 16-bit or
// float32 parameters (mixed precision).
TEST(LayerNorm, HalfPrecisionMatchesTorch) {
  const test::TorchTolerance forward_only{1e-2, 1e-2, false}, tol{1e-2, 1e-2};
  for (DType dt : {kBFloat16, kFloat16}) {
    for (DType pt : {dt, kFloat32}) {
      const std::string what = std::string(dtype_name(dt)) + " with " + dtype_name(pt);
      Tensor x = test::uniform({6, 5, 33}, 1, -3, 3, dt);
      Tensor w = test::uniform({33}, 2, 0.5, 1.5, pt), b = test::uniform({33}, 3, -1, 1, pt);
      auto ln = [](auto& v) { return layer_norm(v[0], {33}, v[1], v[2]); };
      auto rms = [](auto& v) { return rms_norm(v[0], {33}, v[1]); };
      EXPECT_TRUE(test::matches_torch("F.layer_norm(a, (33,), b, c)", {x, w, b}, ln,
                                      forward_only))
          << what;
      EXPECT_TRUE(test::matches_torch("F.rms_norm(a, (33,), b)", {x, w}, rms, forward_only))
          << what;
      EXPECT_TRUE(test::matches_torch(
          "F.layer_norm(a.double(), (33,), b.double(), c.double()).to(a.dtype)", {x, w, b}, ln,
          tol))
          << what;
      EXPECT_TRUE(test::matches_torch(
          "F.rms_norm(a.double(), (33,), b.double(), torch.finfo(torch.float32).eps).to(a.dtype)",
          {x, w}, rms, tol))
          << what;
    }
    Tensor x = test::uniform({3, 5, 7}, 4, -3, 3, dt);
    EXPECT_TRUE(test::matches_torch("F.layer_norm(a, (5, 7))", {x},
                                    [](auto& v) { return layer_norm(v[0], {5, 7}); }, tol))
        << dtype_name(dt);
    EXPECT_TRUE(test::matches_torch("F.rms_norm(a, (4,))", {x.slice(2, 0, 7, 2)},
                                    [](auto& v) { return rms_norm(v[0], {4}); }, tol))
        << dtype_name(dt);
    // The output keeps the input's dtype outside autocast.
    EXPECT_EQ(layer_norm(x, {7}, ones({7}), zeros({7})).dtype(), dt);
    EXPECT_EQ(rms_norm(x, {7}, ones({7})).dtype(), dt);
  }
}

TEST(LayerNorm, AutocastRunsInFloat32) {
  Tensor x = u32({4, 6}, 1, -2, 2).to(kBFloat16), w = u32({6}, 2).to(kBFloat16);
  Tensor b = u32({6}, 3).to(kBFloat16);
  Tensor want_ln = layer_norm(x.to(kFloat32), {6}, w.to(kFloat32), b.to(kFloat32));
  Tensor want_rms = rms_norm(x.to(kFloat32), {6}, w.to(kFloat32));
  Tensor xl = x.detach().requires_grad_(), wl = w.detach().requires_grad_();
  Tensor ln, rms;
  {
    amp::autocast ac(DeviceKind::CPU, kBFloat16);
    ln = layer_norm(xl, {6}, wl, b);
    rms = rms_norm(xl, {6}, wl);
  }
  EXPECT_EQ(ln.dtype(), kFloat32);
  EXPECT_EQ(rms.dtype(), kFloat32);
  EXPECT_TRUE(test::all_close(ln, want_ln, 1e-6, 1e-6));
  EXPECT_TRUE(test::all_close(rms, want_rms, 1e-6, 1e-6));
  sum(add(ln, rms)).backward();  // the gradients reach the bfloat16 leaves in their dtype
  EXPECT_EQ(xl.grad().dtype(), kBFloat16);
  EXPECT_EQ(wl.grad().dtype(), kBFloat16);
}

// ---- determinism and errors ----------------------------------------------------------------

// The parameter gradients are partial sums over chunks of rows fixed by the shape, added in
// chunk order: one thread and all of them give the same bits.
TEST(LayerNorm, BackwardIsBitwiseTheSameOnAnyNumberOfThreads) {
  Tensor x = u32({512, 96}, 1, -2, 2).requires_grad_();
  Tensor w = u32({96}, 2).requires_grad_(), b = u32({96}, 3).requires_grad_();
  Tensor g = u32({512, 96}, 4);
  auto grads = [&] {
    std::vector<std::vector<float>> out;
    for (const Tensor& t : autograd::grad({layer_norm(x, {96}, w, b)}, {x, w, b}, {g}))
      out.push_back(bits(t));
    for (const Tensor& t : autograd::grad({rms_norm(x, {96}, w)}, {x, w}, {g}))
      out.push_back(bits(t));
    return out;
  };
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = grads();
  omp_set_num_threads(std::max(threads, 2));
  const auto many = grads();
  omp_set_num_threads(threads);
  ASSERT_EQ(one.size(), many.size());
  for (size_t i = 0; i < one.size(); ++i) EXPECT_EQ(one[i], many[i]) << "gradient " << i;
  EXPECT_EQ(grads(), many);
}

TEST(LayerNorm, Errors) {
  Tensor x = u32({3, 5, 6}, 1);
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { layer_norm(x, {7}); },
                                            {"layer_norm", "[*, 7]", "got shape [3, 5, 6]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] { layer_norm(x, {6, 6}); }, {"layer_norm", "[*, 6, 6]", "[6, 6]", "[3, 5, 6]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { rms_norm(u32({6}, 2), {2, 6}); },
                                            {"rms_norm", "[*, 2, 6]", "got shape [6]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { layer_norm(x, {}); },
                                            {"layer_norm", "at least one dim", "[]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] { layer_norm(x, {6}, u32({5}, 3)); },
      {"layer_norm", "weight of shape [6]", "got shape [5]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] { layer_norm(x, {5, 6}, {}, u32({6}, 3)); },
      {"layer_norm", "bias of shape [5, 6]", "got shape [6]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] { rms_norm(x, {6}, u32({1, 6}, 3)); },
      {"rms_norm", "weight of shape [6]", "got shape [1, 6]"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { layer_norm(x.to(kInt64), {6}); },
                                            {"layer_norm", "floating-point", "int64"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { rms_norm(x, {6}, ones({6}, kInt32)); },
                                            {"rms_norm", "floating-point 'weight'", "int32"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { layer_norm(x, {6}, {}, {}, -1.0); },
                                            {"layer_norm", "eps >= 0", "-1"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { layer_norm(Tensor(), {6}); },
                                            {"layer_norm", "input"}));
}

// ---- modules -------------------------------------------------------------------------------

namespace {

// `m` on x in anvil and `ctor` (a torch.nn module expression) in torch with m's state dict
// loaded strictly (so the keys must be torch's): output, input gradient and parameter
// gradients of sum(out * g) agree.
::testing::AssertionResult matches_torch_module(nn::Module& m, const std::string& ctor,
                                                const Tensor& x) {
  std::vector<Tensor> inputs{x, Tensor()};
  std::string keys, args, pnames;
  for (auto& [k, v] : m.state_dict()) {
    keys += "'" + k + "', ";
    args += std::string(1, char('a' + inputs.size())) + ", ";
    inputs.push_back(v.clone());
  }
  Tensor xa = x.clone().requires_grad_();
  m.zero_grad();
  Tensor y = m(xa);
  Tensor g = test::uniform(y.shape(), 7, -1, 1, y.dtype());
  inputs[1] = g;
  sum(mul(y, g)).backward();
  std::vector<std::pair<std::string, Tensor>> got{{"output", y}, {"input grad", xa.grad()}};
  for (auto& [n, p] : m.named_parameters()) {
    got.emplace_back(n + " grad", p.grad());
    pnames += "'" + n + "', ";
  }
  const std::string code = "m = " + ctor + "\nm.load_state_dict(dict(zip([" + keys + "], [" +
                           args +
                           "])))\n"
                           "x = a.clone().requires_grad_()\n"
                           "y = m(x)\n"
                           "(y * b).sum().backward()\n"
                           "P = dict(m.named_parameters())\n"
                           "out = [y, x.grad] + [P[n].grad for n in [" +
                           pnames + "]]\n";
  std::vector<Tensor> want;
  try {
    want = test::TorchOracle::get().run_code(code, inputs);
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "torch failed: " << e.what() << "\n" << code;
  }
  if (want.size() != got.size())
    return ::testing::AssertionFailure()
           << "torch gave " << want.size() << " tensors, anvil " << got.size();
  for (size_t i = 0; i < got.size(); ++i) {
    auto r = test::all_close(got[i].second, want[i], 1e-4, 1e-5);
    if (!r) return r << " (" << got[i].first << " of " << m.name() << ")";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace

TEST(LayerNormModule, ParametersInitAndRepr) {
  nn::LayerNorm ln(768);
  EXPECT_EQ(ln.normalized_shape, (Shape{768}));
  ASSERT_EQ(ln.named_parameters().size(), 2u);
  EXPECT_EQ(ln.named_parameters()[0].first, "weight");
  EXPECT_EQ(ln.named_parameters()[1].first, "bias");
  EXPECT_TRUE(allclose(ln.weight, ones({768})));
  EXPECT_TRUE(allclose(ln.bias, zeros({768})));
  EXPECT_TRUE(ln.weight.requires_grad());
  EXPECT_EQ(ln.extra_repr(), "(768,), eps=1e-05, elementwise_affine=true, bias=true");
  nn::LayerNorm no_bias({4, 5}, 1e-6, true, false);
  EXPECT_EQ(no_bias.state_dict().size(), 1u);
  EXPECT_EQ(no_bias.weight.shape(), (Shape{4, 5}));
  EXPECT_EQ(no_bias.extra_repr(), "(4, 5), eps=1e-06, elementwise_affine=true, bias=false");
  nn::LayerNorm plain(5, 1e-5, false);
  EXPECT_TRUE(plain.parameters().empty());
  EXPECT_EQ(plain.extra_repr(), "(5,), eps=1e-05, elementwise_affine=false, bias=false");

  nn::RMSNorm rms(768);
  ASSERT_EQ(rms.named_parameters().size(), 1u);
  EXPECT_EQ(rms.named_parameters()[0].first, "weight");
  EXPECT_TRUE(allclose(rms.weight, ones({768})));
  EXPECT_EQ(rms.extra_repr(), "(768,), eps=none, elementwise_affine=true");
  EXPECT_EQ(nn::RMSNorm({3, 4}, 1e-6).extra_repr(), "(3, 4), eps=1e-06, elementwise_affine=true");
  EXPECT_TRUE(nn::RMSNorm(4, std::nullopt, false).parameters().empty());
}

TEST(LayerNormModule, MatchesTorch) {
  Tensor x = u32({3, 5, 7}, 1, -2, 2);
  nn::LayerNorm ln(7);
  {  // non-trivial parameters
    NoGradGuard ng;
    ln.weight.copy_(u32({7}, 2, 0.5, 1.5));
    ln.bias.copy_(u32({7}, 3));
  }
  EXPECT_TRUE(matches_torch_module(ln, "torch.nn.LayerNorm(7)", x));
  nn::LayerNorm ln2({5, 7}, 1e-3, true, false);
  EXPECT_TRUE(matches_torch_module(ln2, "torch.nn.LayerNorm((5, 7), eps=1e-3, bias=False)", x));
  nn::LayerNorm plain(7, 1e-5, false);
  EXPECT_TRUE(matches_torch_module(plain, "torch.nn.LayerNorm(7, elementwise_affine=False)", x));
  nn::RMSNorm rms(7);
  {
    NoGradGuard ng;
    rms.weight.copy_(u32({7}, 4, 0.5, 1.5));
  }
  EXPECT_TRUE(matches_torch_module(rms, "torch.nn.RMSNorm(7)", x));
  nn::RMSNorm rms2({5, 7}, 1e-6);
  EXPECT_TRUE(matches_torch_module(rms2, "torch.nn.RMSNorm([5, 7], eps=1e-6)", x));
}

TEST(LayerNormModule, Errors) {
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::LayerNorm empty_shape(Shape{}); },
                                            {"LayerNorm", "at least one dim"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::LayerNorm zero_size(Shape{4, 0}); },
                                            {"LayerNorm", "positive sizes", "[4, 0]"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::RMSNorm(4, -1.0); },
                                            {"RMSNorm", "eps >= 0", "-1"}));
  nn::LayerNorm ln(6);
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { ln(zeros({2, 5})); },
                                            {"layer_norm", "[*, 6]", "got shape [2, 5]"}));
}
