// Mixed precision on the CPU: bfloat16 autocast (the dtype each op picks, nesting, gradients
// reaching float32 master weights), GradScaler (scaling, unscaling, skipped steps that leave
// parameters and optimizer state bitwise alone, the scale's schedule against
// torch.amp.GradScaler, state dicts) and the TF32 switch.
#include <cmath>
#include <limits>
#include <memory>

#include "anvil/amp/amp.h"
#include "anvil/optim/optim.h"
#include "support/autocast_loss.h"
#include "support/check.h"
#include "support/optim_cases.h"
#include "support/oracle.h"

using namespace anvil;
using test::snapshot;

namespace {

constexpr auto kCpuKind = DeviceKind::CPU;
const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Every element as float, for bitwise comparisons (no NaN appears where these are used).
std::vector<float> values(const Tensor& t) { return t.detach().to(kFloat32).to_vector<float>(); }

// A two-layer perceptron's parameters (float32 master weights) and its loss.
struct Mlp {
  Tensor w1, b1, w2, b2;
  std::vector<Tensor> params() const { return {w1, b1, w2, b2}; }
};
Mlp make_mlp(uint64_t seed) {
  return {test::uniform({16, 6}, seed, -0.5, 0.5, kFloat32).requires_grad_(),
          test::uniform({16}, seed + 1, -0.5, 0.5, kFloat32).requires_grad_(),
          test::uniform({4, 16}, seed + 2, -0.5, 0.5, kFloat32).requires_grad_(),
          test::uniform({4}, seed + 3, -0.5, 0.5, kFloat32).requires_grad_()};
}
Tensor mlp_logits(const Mlp& m, const Tensor& x) {
  return linear(relu(linear(x, m.w1, m.b1)), m.w2, m.b2);
}
Tensor targets(int64_t n, int64_t c) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < n; ++i) v.push_back((i * 3 + 1) % c);
  return tensor(v, {n});
}

}  // namespace

// ---------------------------------------------------------------- autocast

TEST(Autocast, StateDefaultsAndNesting) {
  EXPECT_FALSE(amp::is_autocast_enabled(kCpuKind));
  EXPECT_FALSE(amp::is_autocast_enabled(DeviceKind::CUDA));
  EXPECT_EQ(amp::autocast_dtype(kCpuKind), kBFloat16);  // PyTorch's defaults
  EXPECT_EQ(amp::autocast_dtype(DeviceKind::CUDA), kFloat16);
  {
    amp::autocast outer(kCpuKind, kFloat16);
    EXPECT_TRUE(amp::is_autocast_enabled(kCpuKind));
    EXPECT_FALSE(amp::is_autocast_enabled(DeviceKind::CUDA));
    EXPECT_EQ(amp::autocast_dtype(kCpuKind), kFloat16);
    {
      amp::autocast inner(kCpuKind, kBFloat16);
      EXPECT_EQ(amp::autocast_dtype(kCpuKind), kBFloat16);
      {
        amp::autocast off(kCpuKind, std::nullopt, false);
        EXPECT_FALSE(amp::is_autocast_enabled(kCpuKind));
        EXPECT_EQ(amp::autocast_dtype(kCpuKind), kBFloat16);  // kept without a dtype
      }
      EXPECT_TRUE(amp::is_autocast_enabled(kCpuKind));
    }
    EXPECT_EQ(amp::autocast_dtype(kCpuKind), kFloat16);
    EXPECT_TRUE(amp::is_autocast_enabled(kCpuKind));
  }
  EXPECT_FALSE(amp::is_autocast_enabled(kCpuKind));
  EXPECT_EQ(amp::autocast_dtype(kCpuKind), kBFloat16);
}

TEST(Autocast, RefusesDtypesOtherThan16BitFloats) {
  EXPECT_TRUE(test::throws_with<DTypeError>([] { amp::autocast ac(kCpuKind, kFloat32); },
                                            {"autocast", "float16 or bfloat16", "float32"}));
  EXPECT_TRUE(
      test::throws_with<DTypeError>([] { amp::set_autocast_dtype(kCpuKind, kInt32); }, {"int32"}));
  EXPECT_FALSE(amp::is_autocast_enabled(kCpuKind));  // the failed guard changed nothing
  EXPECT_EQ(amp::autocast_dtype(kCpuKind), kBFloat16);
}

TEST(Autocast, OpsPickTheirDtypes) {
  const Tensor a = test::uniform({3, 4}, 1, -1, 1, kFloat32);
  const Tensor b = test::uniform({4, 5}, 2, -1, 1, kFloat32);
  const Tensor w = test::uniform({5, 4}, 3, -1, 1, kFloat32);
  const Tensor bias = test::uniform({5}, 4, -1, 1, kFloat32);
  const Tensor img = test::uniform({2, 3, 6, 6}, 5, -1, 1, kFloat32);
  const Tensor kernel = test::uniform({4, 3, 3, 3}, 6, -1, 1, kFloat32);
  const Tensor kbias = test::uniform({4}, 7, -1, 1, kFloat32);
  const Tensor t = targets(3, 4);
  amp::autocast ac(kCpuKind, kBFloat16);
  const Tensor low = matmul(a, b);
  // Lower precision, weights and bias included.
  EXPECT_EQ(low.dtype(), kBFloat16);
  EXPECT_EQ(mm(a, b).dtype(), kBFloat16);
  EXPECT_EQ(bmm(a.unsqueeze(0), b.unsqueeze(0)).dtype(), kBFloat16);
  EXPECT_EQ(linear(a, w, bias).dtype(), kBFloat16);
  EXPECT_EQ(linear(a.to(kBFloat16), w).dtype(), kBFloat16);
  EXPECT_EQ(conv2d(img, kernel, kbias, {1, 1}, {1, 1}).dtype(), kBFloat16);
  // Float32 for 16-bit inputs.
  EXPECT_EQ(softmax(low, 1).dtype(), kFloat32);
  EXPECT_EQ(log_softmax(low, 1).dtype(), kFloat32);
  EXPECT_EQ(cross_entropy(low.narrow(1, 0, 4), t).dtype(), kFloat32);
  EXPECT_EQ(nll_loss(log_softmax(low, 1).to(kBFloat16), t).dtype(), kFloat32);
  EXPECT_EQ(mse_loss(low, low).dtype(), kFloat32);
  EXPECT_EQ(l1_loss(low, low).dtype(), kFloat32);
  EXPECT_EQ(huber_loss(low, low).dtype(), kFloat32);
  EXPECT_EQ(smooth_l1_loss(low, low).dtype(), kFloat32);
  EXPECT_EQ(binary_cross_entropy_with_logits(low, sigmoid(low)).dtype(), kFloat32);
  EXPECT_EQ(binary_cross_entropy(sigmoid(low), sigmoid(low)).dtype(), kFloat32);
  EXPECT_EQ(soft_cross_entropy(low, softmax(low, 1).to(kBFloat16)).dtype(), kFloat32);
  EXPECT_EQ(sum(low).dtype(), kFloat32);
  EXPECT_EQ(sum(low, {0}).dtype(), kFloat32);
  EXPECT_EQ(exp(low).dtype(), kFloat32);
  EXPECT_EQ(log(abs(low)).dtype(), kFloat32);
  EXPECT_EQ(rsqrt(abs(low)).dtype(), kFloat32);
  EXPECT_EQ(pow(low, 2).dtype(), kFloat32);
  // Widest input type; the rest keep their inputs' dtype (as PyTorch's autocast leaves them).
  EXPECT_EQ(add(low, test::uniform({3, 5}, 8, -1, 1, kFloat32)).dtype(), kFloat32);
  EXPECT_EQ(cat({low, b}).dtype(), kFloat32);
  EXPECT_EQ(scatter_add(low, 0, zeros({1, 5}, kInt64), b.narrow(0, 0, 1)).dtype(), kFloat32);
  EXPECT_EQ(relu(low).dtype(), kBFloat16);
  EXPECT_EQ(mean(low).dtype(), kBFloat16);
  EXPECT_EQ(add(low, low).dtype(), kBFloat16);
  EXPECT_EQ(sum_to(low, {1, 5}).dtype(), kBFloat16);  // undoes broadcasting in place
  // float64 and integers are left alone.
  EXPECT_EQ(matmul(a.to(kFloat64), b.to(kFloat64)).dtype(), kFloat64);
  EXPECT_EQ(sum(a.to(kFloat64)).dtype(), kFloat64);
  EXPECT_EQ(sum(t).dtype(), kInt64);
  // The same under NoGradGuard.
  NoGradGuard no_grad;
  EXPECT_EQ(matmul(a, b).dtype(), kBFloat16);
  EXPECT_EQ(softmax(low, 1).dtype(), kFloat32);
}

TEST(Autocast, LowPrecisionResultsAreTheCastOperandsProduct) {
  const Tensor a = test::uniform({7, 9}, 11, -2, 2, kFloat32);
  const Tensor b = test::uniform({9, 5}, 12, -2, 2, kFloat32);
  const Tensor want = matmul(a.to(kBFloat16), b.to(kBFloat16));
  Tensor got;
  {
    amp::autocast ac(kCpuKind, kBFloat16);
    got = matmul(a, b);
  }
  EXPECT_EQ(values(got), values(want));
  EXPECT_NE(values(got), values(matmul(a, b)));  // really not float32
  {
    amp::autocast ac(kCpuKind, kFloat16);
    EXPECT_EQ(values(matmul(a, b)), values(matmul(a.to(kFloat16), b.to(kFloat16))));
  }
}

// cross_entropy reads 16-bit logits without a float32 copy; nothing may change for it.
TEST(Autocast, CrossEntropyOn16BitLogitsGivesTheFloat32CastsLossAndGradient) {
  for (DType low : {kBFloat16, kFloat16}) {
    SCOPED_TRACE(dtype_name(low));
    const test::AutocastLossCheck r = test::autocast_cross_entropy(kCPU, low, 9, 41, 5);
    EXPECT_EQ(r.fused_loss.dtype(), kFloat32);
    EXPECT_EQ(r.fused_grad.dtype(), low);
    EXPECT_EQ(values(r.fused_loss), values(r.cast_loss));
    EXPECT_EQ(values(r.fused_grad), values(r.cast_grad));
  }
}

TEST(Autocast, DisabledOrOtherDeviceKindIsANoOp) {
  const Tensor a = test::uniform({3, 4}, 1, -1, 1, kFloat32);
  const Tensor b = test::uniform({4, 5}, 2, -1, 1, kFloat32);
  const std::vector<float> want = values(matmul(a, b));
  {
    amp::autocast ac(kCpuKind, kBFloat16, /*enabled=*/false);
    const Tensor y = matmul(a, b);
    EXPECT_EQ(y.dtype(), kFloat32);
    EXPECT_EQ(values(y), want);
    EXPECT_EQ(softmax(y.to(kBFloat16), 1).dtype(), kBFloat16);
  }
  {
    amp::autocast ac(DeviceKind::CUDA, kBFloat16);  // CPU tensors: not concerned
    EXPECT_EQ(matmul(a, b).dtype(), kFloat32);
  }
  {
    amp::autocast on(kCpuKind, kBFloat16);
    amp::autocast off(kCpuKind, std::nullopt, false);  // nested: switched off again
    EXPECT_EQ(matmul(a, b).dtype(), kFloat32);
  }
}

TEST(Autocast, GradientsReachFloat32MasterWeights) {
  const Tensor x = test::uniform({8, 6}, 21, -1, 1, kFloat32);
  const Tensor t = targets(8, 4);
  Mlp ref = make_mlp(30), amp_net = make_mlp(30);
  cross_entropy(mlp_logits(ref, x), t).backward();
  Tensor loss, logits;
  {
    amp::autocast ac(kCpuKind, kBFloat16);
    logits = mlp_logits(amp_net, x);
    loss = cross_entropy(logits, t);
  }
  EXPECT_EQ(logits.dtype(), kBFloat16);
  EXPECT_EQ(loss.dtype(), kFloat32);
  loss.backward();
  const auto want = ref.params(), got = amp_net.params();
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(got[i].grad().defined()) << i;
    EXPECT_EQ(got[i].grad().dtype(), kFloat32) << i;
    EXPECT_EQ(got[i].dtype(), kFloat32) << i;
    EXPECT_TRUE(test::all_close(got[i].grad(), want[i].grad(), 3e-2, 3e-3)) << "parameter " << i;
    EXPECT_NE(values(got[i].grad()), values(want[i].grad())) << "parameter " << i;
  }
}

TEST(Autocast, ConvolutionGradientsReachFloat32Weights) {
  const Tensor img = test::uniform({2, 3, 6, 6}, 41, -1, 1, kFloat32);
  const Tensor target = test::uniform({2, 4, 6, 6}, 42, -1, 1, kFloat32);
  auto make = [] {
    return std::vector<Tensor>{
        test::uniform({4, 3, 3, 3}, 43, -0.5, 0.5, kFloat32).requires_grad_(),
        test::uniform({4}, 44, -0.5, 0.5, kFloat32).requires_grad_()};
  };
  auto ref = make(), got = make();
  mse_loss(conv2d(img, ref[0], ref[1], {1, 1}, {1, 1}), target).backward();
  Tensor out, loss;
  {
    amp::autocast ac(kCpuKind, kBFloat16);
    out = conv2d(img, got[0], got[1], {1, 1}, {1, 1});
    loss = mse_loss(out, target);
  }
  EXPECT_EQ(out.dtype(), kBFloat16);
  EXPECT_EQ(loss.dtype(), kFloat32);
  loss.backward();
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(got[i].grad().dtype(), kFloat32);
    EXPECT_TRUE(test::all_close(got[i].grad(), ref[i].grad(), 3e-2, 3e-3)) << i;
  }
}

// ---------------------------------------------------------------- GradScaler

namespace {

// Fixed data for y = X W + b, as test_optim.cpp.
struct Problem {
  Tensor X, Y, W0, b0;
};
Problem problem() {
  return {test::uniform({8, 3}, 1, -1, 1, kFloat32), test::uniform({8, 2}, 2, -1, 1, kFloat32),
          test::uniform({3, 2}, 3, -1, 1, kFloat32), test::uniform({2}, 4, -1, 1, kFloat32)};
}
Tensor mse(const Problem& pb, const Tensor& W, const Tensor& b) {
  return mean(square(sub(add(matmul(pb.X, W), b), pb.Y)));
}

// An optimizer whose update does not go through the fused kernels.
class PlainSGD : public optim::Optimizer {
 public:
  PlainSGD(std::vector<Tensor> params, double lr) : Optimizer("PlainSGD", {{"lr", lr}}) {
    init(optim::single_group(std::move(params)));
  }

 protected:
  void update_group(size_t group, const std::vector<Tensor>& params) override {
    for (const Tensor& p : params) p.copy_(sub(p, mul(p.grad(), groups_[group].options.at("lr"))));
  }
};

}  // namespace

TEST(GradScaler, ScalesTheLossAndUnscalesTheGradients) {
  amp::GradScaler scaler(kCpuKind, {.init_scale = 1024});
  EXPECT_EQ(scaler.get_scale(), 1024);
  EXPECT_FALSE(scaler.scale_tensor().defined());
  Tensor w = test::uniform({5}, 1, -1, 1, kFloat32).requires_grad_();
  Tensor h = test::uniform({3}, 2, -1, 1, kFloat16).requires_grad_();  // float16 parameters too
  optim::SGD opt({w, h}, {.lr = 0.25});
  const Tensor loss = add(sum(mul(w, w)), sum(mul(h, h)).to(kFloat32));
  const Tensor scaled = scaler.scale(loss);
  EXPECT_EQ(scaled.item<double>(), loss.item<double>() * 1024);
  ASSERT_TRUE(scaler.scale_tensor().defined());
  EXPECT_EQ(scaler.scale_tensor().dtype(), kFloat32);
  EXPECT_EQ(scaler.scale_tensor().dim(), 0);
  scaled.backward();
  EXPECT_TRUE(test::all_close(w.grad(), mul(w.detach(), 2048.0), 0, 0));
  scaler.unscale_(opt);
  EXPECT_FALSE(scaler.found_inf_host(opt));
  EXPECT_EQ(values(w.grad()), values(mul(w.detach(), 2.0)));  // a power of two: exact
  EXPECT_EQ(h.grad().dtype(), kFloat16);
  EXPECT_EQ(values(h.grad()), values(mul(h.detach(), 2.0)));
  const Tensor w0 = w.detach().clone();
  const auto h0 = values(h);
  scaler.step(opt);                                            // after unscale_: not unscaled twice
  EXPECT_EQ(values(w), values(sub(w0, mul(w.grad(), 0.25))));  // w0 / 2
  EXPECT_NE(values(h), h0);
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 1024);  // one good step of 2000
  EXPECT_EQ(scaler.state_dict().at("_growth_tracker").item<int64_t>(), 1);
}

TEST(GradScaler, UnscalesStridedGradientsInPlace) {
  amp::GradScaler scaler(kCpuKind, {.init_scale = 8});
  Tensor w = zeros({3, 2}).requires_grad_();
  optim::SGD opt({w}, {.lr = 1});
  scaler.scale(sum(w));  // creates the scale
  const Tensor g = test::uniform({2, 3}, 7, -1, 1, kFloat32);
  w.set_grad(mul(g, 8.0).t());  // a transposed view
  scaler.unscale_(opt);
  EXPECT_EQ(values(w.grad()), values(g.t()));
}

TEST(GradScaler, AnInfOrNanGradientSkipsTheStepAndLeavesEverythingAlone) {
  for (double bad : {kInf, -kInf, kNaN}) {
    for (DType dt : {kFloat32, kFloat16}) {
      Tensor w = test::uniform({4, 3}, 1, -1, 1, dt).requires_grad_();
      Tensor b = test::uniform({3}, 2, -1, 1, dt).requires_grad_();
      optim::Adam opt({w, b}, {.lr = 0.1, .amsgrad = true});
      amp::GradScaler scaler(kCpuKind, {.init_scale = 256});
      auto run = [&](double factor) {
        opt.zero_grad();
        Tensor loss = mul(sum(square(add(w, b))).to(kFloat32), factor);
        scaler.scale(loss).backward();
        scaler.step(opt);
        scaler.update();
      };
      run(1.0);  // creates the state
      ASSERT_EQ(opt.state(w).at("step").item<double>(), 1.0);
      const auto before = snapshot(opt, {w, b});
      run(bad);
      EXPECT_TRUE(before == snapshot(opt, {w, b})) << bad << " " << dtype_name(dt);
      EXPECT_EQ(opt.state(w).at("step").item<double>(), 1.0);  // did not advance
      EXPECT_EQ(scaler.get_scale(), 128);                      // backed off
      EXPECT_EQ(scaler.state_dict().at("_growth_tracker").item<int64_t>(), 0);
      run(1.0);
      EXPECT_FALSE(before == snapshot(opt, {w, b}));
      EXPECT_EQ(opt.state(w).at("step").item<double>(), 2.0);
    }
  }
}

TEST(GradScaler, FoundInfIsSetByUnscale) {
  Tensor w = zeros({4}).requires_grad_();
  Tensor v = zeros({2}, kFloat16).requires_grad_();
  optim::SGD opt({w, v}, {.lr = 1});
  amp::GradScaler scaler(kCpuKind);
  scaler.scale(sum(w));
  w.set_grad(tensor<float>({1, 2, 3, 4}, {4}));
  v.set_grad(tensor<float>({1, float(kInf)}, {2}).to(kFloat16));
  scaler.unscale_(opt);
  EXPECT_TRUE(scaler.found_inf_host(opt));
  scaler.update();
  EXPECT_FALSE(scaler.found_inf_host(opt));  // forgotten by update()
  v.grad().fill_(1);
  scaler.unscale_(opt);
  EXPECT_FALSE(scaler.found_inf_host(opt));  // the flag is cleared by the next unscale_
}

TEST(GradScaler, ASkippedFirstStepCreatesNoState) {
  Tensor w = test::uniform({3}, 1, -1, 1, kFloat32).requires_grad_();
  optim::SGD opt({w}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
  amp::GradScaler scaler(kCpuKind, {.init_scale = 4});
  const auto w0 = values(w);
  scaler.scale(mul(sum(w), kInf)).backward();
  scaler.step(opt);
  scaler.update();
  EXPECT_EQ(values(w), w0);
  EXPECT_TRUE(opt.state(w).empty());
  // The next step is SGD's first: the momentum buffer takes the gradient (ones).
  opt.zero_grad();
  scaler.scale(sum(w)).backward();
  scaler.step(opt);
  EXPECT_EQ(values(opt.state(w).at("momentum_buffer")), std::vector<float>(3, 1.0f));
  EXPECT_EQ(values(w), values(sub(tensor(w0, {3}), 0.1)));
}

TEST(GradScaler, AnOptimizerWithoutFusedUpdatesSkipsThroughTheHost) {
  Tensor w = test::uniform({3}, 1, -1, 1, kFloat32).requires_grad_();
  PlainSGD opt({w}, 0.5);
  amp::GradScaler scaler(kCpuKind, {.init_scale = 2});
  auto step = [&](double f) {
    opt.zero_grad();
    scaler.scale(mul(sum(w), f)).backward();
    scaler.step(opt);
    scaler.update();
  };
  const auto w0 = values(w);
  step(kInf);  // skipped before anything is known
  EXPECT_EQ(values(w), w0);
  step(1);  // steps, and shows the update is not a fused one
  const auto w1 = values(w);
  EXPECT_EQ(w1, values(sub(tensor(w0, {3}), 0.5)));
  step(kNaN);  // skipped after the host read
  EXPECT_EQ(values(w), w1);
  step(1);
  EXPECT_EQ(values(w), values(sub(tensor(w1, {3}), 0.5)));
}

TEST(GradScaler, ASkippedStepOnTheDeviceCreatesNoStateForANewParameter) {
  Tensor w = test::uniform({3}, 1, -1, 1, kFloat32).requires_grad_();
  Tensor u = test::uniform({2}, 2, -1, 1, kFloat32).requires_grad_();
  optim::Adam opt({w, u}, {.lr = 0.1});
  amp::GradScaler scaler(kCpuKind);
  auto step = [&](double f, bool with_u) {
    opt.zero_grad();
    Tensor loss = sum(w);
    if (with_u) loss = add(loss, sum(u));
    scaler.scale(mul(loss, f)).backward();
    scaler.step(opt);
    scaler.update();
  };
  step(1, false);  // w's state exists; u has had no gradient yet
  step(1, false);  // the optimizer now skips on the device
  const auto w2 = values(w), u0 = values(u);
  step(kInf, true);
  EXPECT_EQ(values(w), w2);
  EXPECT_EQ(values(u), u0);
  EXPECT_TRUE(opt.state(u).empty());
  EXPECT_EQ(opt.state(w).at("step").item<double>(), 2.0);
  step(1, true);
  EXPECT_EQ(opt.state(u).at("step").item<double>(), 1.0);
  EXPECT_EQ(opt.state(w).at("step").item<double>(), 3.0);
}

TEST(GradScaler, MatchesTorchGradScalerWithSkippedSteps) {
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  const Problem pb = problem();
  const std::vector<double> factors = {1, 1, 1, 1, kInf, 1, 1, 1, kNaN, 1, 1, 1, 1, 1};
  Tensor W = pb.W0.clone().requires_grad_(), b = pb.b0.clone().requires_grad_();
  optim::Adam opt({W, b}, {.lr = 0.05});
  amp::GradScaler scaler(kCpuKind, {.init_scale = 256, .growth_interval = 3});
  std::vector<float> scales, trackers;
  for (double f : factors) {
    opt.zero_grad();
    scaler.scale(mul(mse(pb, W, b), f)).backward();
    scaler.step(opt);
    scaler.update();
    scales.push_back(float(scaler.get_scale()));
    trackers.push_back(float(scaler.state_dict().at("_growth_tracker").item<int64_t>()));
  }
  std::vector<float> fv(factors.begin(), factors.end());
  auto ref = oracle.run_code(
      "W = a.clone().requires_grad_(); bb = b.clone().requires_grad_()\n"
      "X, Y, F = c, d, e.tolist()\n"
      "opt = torch.optim.Adam([W, bb], lr=0.05)\n"
      "scaler = torch.amp.GradScaler('cpu', init_scale=256.0, growth_interval=3)\n"
      "scales, trackers = [], []\n"
      "for f in F:\n"
      "    opt.zero_grad()\n"
      "    loss = ((X @ W + bb - Y) ** 2).mean() * f\n"
      "    scaler.scale(loss).backward()\n"
      "    scaler.step(opt)\n"
      "    scaler.update()\n"
      "    scales.append(scaler.get_scale()); trackers.append(float(scaler._growth_tracker))\n"
      "out = [W, bb, torch.tensor(scales), torch.tensor(trackers), opt.state[W]['step'],\n"
      "       opt.state[W]['exp_avg']]\n",
      {pb.W0, pb.b0, pb.X, pb.Y, tensor(fv, {int64_t(fv.size())})});
  ASSERT_EQ(ref.size(), 6u);
  EXPECT_EQ(values(tensor(scales, {int64_t(scales.size())})), values(ref[2]));
  EXPECT_EQ(values(tensor(trackers, {int64_t(trackers.size())})), values(ref[3]));
  EXPECT_EQ(opt.state(W).at("step").item<double>(), ref[4].item<double>());
  EXPECT_EQ(ref[4].item<double>(), 12.0);  // two of fourteen skipped
  EXPECT_TRUE(test::all_close(W.detach(), ref[0], 1e-5, 1e-6));
  EXPECT_TRUE(test::all_close(b.detach(), ref[1], 1e-5, 1e-6));
  EXPECT_TRUE(test::all_close(opt.state(W).at("exp_avg"), ref[5], 1e-5, 1e-6));
}

TEST(GradScaler, GrowsAfterGrowthIntervalGoodStepsAndStopsAtInfinity) {
  Tensor w = ones({2}).requires_grad_();
  optim::SGD opt({w}, {.lr = 0});
  amp::GradScaler scaler(
      kCpuKind,
      {.init_scale = 2, .growth_factor = 4, .backoff_factor = 0.25, .growth_interval = 2});
  auto step = [&](double f) {
    opt.zero_grad();
    scaler.scale(mul(sum(w), f)).backward();
    scaler.step(opt);
    scaler.update();
    return scaler.get_scale();
  };
  EXPECT_EQ(step(1), 2);
  EXPECT_EQ(step(1), 8);
  EXPECT_EQ(step(1), 8);
  EXPECT_EQ(step(kInf), 2);
  EXPECT_EQ(step(1), 2);
  EXPECT_EQ(step(1), 8);
  scaler.update(3e38);  // growing from here would overflow float32: the scale stays
  EXPECT_EQ(step(1e-38), float(3e38));
  EXPECT_EQ(step(1e-38), float(3e38));
  EXPECT_EQ(scaler.state_dict().at("_growth_tracker").item<int64_t>(), 0);
  scaler.update(scalar_tensor(16.0, kFloat32));
  EXPECT_EQ(scaler.get_scale(), 16);
}

TEST(GradScaler, RefusesStepsOutOfOrder) {
  Tensor w = ones({2}).requires_grad_();
  optim::SGD opt({w}, {.lr = 0.1});
  amp::GradScaler scaler(kCpuKind);
  EXPECT_TRUE(test::throws_with<ValueError>([&] { scaler.unscale_(opt); }, {"unscale_", "scale("}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { scaler.update(); }, {"update"}));
  scaler.scale(sum(w)).backward();
  EXPECT_TRUE(test::throws_with<ValueError>([&] { scaler.update(); }, {"no inf checks"}));
  scaler.unscale_(opt);
  EXPECT_TRUE(
      test::throws_with<ValueError>([&] { scaler.unscale_(opt); }, {"already been called"}));
  scaler.step(opt);
  EXPECT_TRUE(test::throws_with<ValueError>([&] { scaler.step(opt); }, {"already been called"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { scaler.unscale_(opt); }, {"after step()"}));
  scaler.update();
  opt.zero_grad();
  EXPECT_TRUE(test::throws_with<ValueError>([&] { scaler.step(opt); }, {"no inf checks"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { amp::GradScaler s(kCpuKind, {.growth_factor = 1.0}); }, {"growth_factor > 1"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { amp::GradScaler s(kCpuKind, {.backoff_factor = 1.5}); }, {"backoff_factor"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { amp::GradScaler s(kCpuKind, {.growth_interval = 0}); }, {"growth_interval"}));
  amp::GradScaler cpu(kCpuKind);
  if (cuda_is_available()) {
    Tensor on_gpu = ones({}).cuda();
    EXPECT_TRUE(test::throws_with<DeviceError>([&] { cpu.scale(on_gpu); }, {"cpu", "cuda:0"}));
  }
}

TEST(GradScaler, DisabledIsAPassThrough) {
  Tensor w = ones({2}).requires_grad_();
  optim::SGD opt({w}, {.lr = 0.5});
  amp::GradScaler scaler(kCpuKind, {.enabled = false});
  EXPECT_FALSE(scaler.is_enabled());
  const Tensor loss = mul(sum(w), kInf);
  EXPECT_TRUE(scaler.scale(loss).is_same(loss));
  sum(w).backward();
  scaler.unscale_(opt);
  scaler.step(opt);  // a plain step
  scaler.update();
  EXPECT_EQ(values(w), std::vector<float>(2, 0.5f));
  EXPECT_EQ(scaler.get_scale(), 1.0);
  EXPECT_TRUE(scaler.state_dict().empty());
  scaler.load_state_dict({});  // ignored
  if (!cuda_is_available()) {  // as PyTorch: a CUDA scaler without CUDA turns itself off
    amp::GradScaler cuda_scaler(DeviceKind::CUDA);
    EXPECT_FALSE(cuda_scaler.is_enabled());
  }
}

TEST(GradScaler, StateDictRoundTrip) {
  Tensor w = ones({2}).requires_grad_();
  optim::SGD opt({w}, {.lr = 0.01});
  amp::GradScaler a(
      kCpuKind,
      {.init_scale = 64, .growth_factor = 3, .backoff_factor = 0.25, .growth_interval = 5});
  for (double f : {1.0, kInf, 1.0, 1.0}) {
    opt.zero_grad();
    a.scale(mul(sum(w), f)).backward();
    a.step(opt);
    a.update();
  }
  const StateDict sd = a.state_dict();
  EXPECT_EQ(sd.at("scale").dtype(), kFloat32);
  EXPECT_EQ(sd.at("scale").item<double>(), 16.0);
  EXPECT_EQ(sd.at("growth_factor").item<double>(), 3.0);
  EXPECT_EQ(sd.at("backoff_factor").item<double>(), 0.25);
  EXPECT_EQ(sd.at("growth_interval").item<int64_t>(), 5);
  EXPECT_EQ(sd.at("_growth_tracker").dtype(), kInt32);
  EXPECT_EQ(sd.at("_growth_tracker").item<int64_t>(), 2);
  // Into a fresh scaler (values taken at its first scale()) and a running one.
  amp::GradScaler fresh(kCpuKind), running(kCpuKind);
  running.scale(sum(w));
  fresh.load_state_dict(sd);
  running.load_state_dict(sd);
  for (amp::GradScaler* s : {&fresh, &running}) {
    EXPECT_EQ(s->get_scale(), 16.0);
    EXPECT_EQ(s->get_growth_factor(), 3.0);
    EXPECT_EQ(s->get_backoff_factor(), 0.25);
    EXPECT_EQ(s->get_growth_interval(), 5);
    const StateDict loaded = s->state_dict();
    for (const auto& [key, t] : sd)
      EXPECT_EQ(loaded.at(key).item<double>(), t.item<double>()) << key;
    // Three more good steps reach the growth interval: 16 * 3.
    for (int i = 0; i < 3; ++i) {
      opt.zero_grad();
      s->scale(sum(w)).backward();
      s->step(opt);
      s->update();
    }
    EXPECT_EQ(s->get_scale(), 48.0);
  }
  EXPECT_TRUE(
      test::throws_with<ValueError>([&] { fresh.load_state_dict({}); }, {"empty", "disabled"}));
  StateDict partial = sd;
  partial.erase("backoff_factor");
  EXPECT_TRUE(
      test::throws_with<ValueError>([&] { fresh.load_state_dict(partial); }, {"backoff_factor"}));
}

TEST(GradScaler, BFloat16AutocastTrainingStepsWithAScaler) {
  const Tensor x = test::uniform({8, 6}, 21, -1, 1, kFloat32);
  const Tensor t = targets(8, 4);
  Mlp net = make_mlp(50);
  optim::AdamW opt(net.params(), {.lr = 1e-2});
  amp::GradScaler scaler(kCpuKind);
  double first = 0, last = 0;
  for (int i = 0; i < 30; ++i) {
    opt.zero_grad();
    Tensor loss;
    {
      amp::autocast ac(kCpuKind, kBFloat16);
      loss = cross_entropy(mlp_logits(net, x), t);
    }
    scaler.scale(loss).backward();
    scaler.step(opt);
    scaler.update();
    (i == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_LT(last, 0.5 * first);
  for (const Tensor& p : net.params()) EXPECT_EQ(p.dtype(), kFloat32);
}

// ---------------------------------------------------------------- TF32

TEST(Precision, AllowTf32IsASwitch) {
  EXPECT_FALSE(allow_tf32());  // off by default, as PyTorch's matmul flag
  set_allow_tf32(true);
  EXPECT_TRUE(allow_tf32());
  set_allow_tf32(false);
  EXPECT_FALSE(allow_tf32());
}
