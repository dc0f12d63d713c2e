// Mixed precision on CUDA: bfloat16 and float16 autocast (dtypes, gradients into float32
// master weights), GradScaler's kernels against the CPU ones (unscaling, found_inf, skipped
// steps, the scale's schedule), a float16 training run that tracks float32, an amp step
// captured in a CUDA graph and replayed without host synchronisation, and TF32. Skipped
// without a GPU.
#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "anvil/amp/amp.h"
#include "anvil/core/cuda_graph.h"
#include "anvil/optim/optim.h"
#include "support/autocast_loss.h"
#include "support/check.h"
#include "support/optim_cases.h"

using namespace anvil;
using test::snapshot;

namespace {

constexpr auto kGpu = DeviceKind::CUDA;
const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

class CudaAmp : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device";
  }
};

// Every element as float (copied to the host), for bitwise comparisons.
std::vector<float> values(const Tensor& t) {
  return t.detach().to(kCPU).to(kFloat32).to_vector<float>();
}

Tensor on_gpu(const Tensor& t) { return t.to(kCUDA); }

Tensor leaf(const Shape& shape, uint64_t seed, Device device, DType dt = kFloat32,
            double scale = 0.5) {
  return test::uniform(shape, seed, -scale, scale, dt).to(device).requires_grad_();
}

// A two-layer perceptron over float32 master weights.
struct Mlp {
  Tensor w1, b1, w2, b2;
  std::vector<Tensor> params() const { return {w1, b1, w2, b2}; }
};
Mlp make_mlp(int64_t in, int64_t hidden, int64_t out, uint64_t seed, Device device) {
  const double s1 = 1 / std::sqrt(double(in)), s2 = 1 / std::sqrt(double(hidden));
  return {leaf({hidden, in}, seed, device, kFloat32, s1),
          leaf({hidden}, seed + 1, device, kFloat32, s1),
          leaf({out, hidden}, seed + 2, device, kFloat32, s2),
          leaf({out}, seed + 3, device, kFloat32, s2)};
}
Tensor mlp_logits(const Mlp& m, const Tensor& x) {
  return linear(relu(linear(x, m.w1, m.b1)), m.w2, m.b2);
}

Tensor class_targets(int64_t n, int64_t c, Device device) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < n; ++i) v.push_back((i * 5 + 2) % c);
  return tensor(v, {n}).to(device);
}

}  // namespace

// ---------------------------------------------------------------- autocast

TEST_F(CudaAmp, OpsPickTheirDtypes) {
  const Tensor a = on_gpu(test::uniform({3, 4}, 1, -1, 1, kFloat32));
  const Tensor b = on_gpu(test::uniform({4, 5}, 2, -1, 1, kFloat32));
  const Tensor w = on_gpu(test::uniform({5, 4}, 3, -1, 1, kFloat32));
  const Tensor bias = on_gpu(test::uniform({5}, 4, -1, 1, kFloat32));
  const Tensor img = on_gpu(test::uniform({2, 3, 6, 6}, 5, -1, 1, kFloat32));
  const Tensor kernel = on_gpu(test::uniform({4, 3, 3, 3}, 6, -1, 1, kFloat32));
  const Tensor t = class_targets(3, 5, kCUDA);
  for (DType dt : {kBFloat16, kFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    amp::autocast ac(kGpu, dt);
    EXPECT_EQ(amp::autocast_dtype(kGpu), dt);
    const Tensor low = matmul(a, b);
    EXPECT_EQ(low.dtype(), dt);
    EXPECT_EQ(mm(a, b).dtype(), dt);
    EXPECT_EQ(bmm(a.unsqueeze(0), b.unsqueeze(0)).dtype(), dt);
    EXPECT_EQ(linear(a, w, bias).dtype(), dt);
    const Tensor feat = conv2d(img, kernel, bias.narrow(0, 0, 4), {1, 1}, {1, 1});
    EXPECT_EQ(feat.dtype(), dt);
    EXPECT_EQ(softmax(low, 1).dtype(), kFloat32);
    EXPECT_EQ(log_softmax(low, 1).dtype(), kFloat32);
    EXPECT_EQ(cross_entropy(low, t).dtype(), kFloat32);
    EXPECT_EQ(mse_loss(low, low).dtype(), kFloat32);
    EXPECT_EQ(sum(low).dtype(), kFloat32);
    EXPECT_EQ(exp(low).dtype(), kFloat32);
    EXPECT_EQ(add(low, on_gpu(test::uniform({3, 5}, 7, -1, 1, kFloat32))).dtype(), kFloat32);
    EXPECT_EQ(relu(low).dtype(), dt);
    // Batch norm keeps the 16-bit input's dtype with float32 weights and statistics.
    const TensorOptions f32 = TensorOptions().device(kCUDA);
    Tensor rm = zeros({4}, f32), rv = ones({4}, f32);
    const Tensor bn = batch_norm(feat, rm, rv, ones({4}, f32), zeros({4}, f32), true);
    EXPECT_EQ(bn.dtype(), dt);
    EXPECT_EQ(rm.dtype(), kFloat32);
    // What the op computes is the product of the cast operands.
    EXPECT_EQ(values(low), values(matmul(a.to(dt), b.to(dt))));
  }
  EXPECT_EQ(matmul(a, b).dtype(), kFloat32);
  amp::autocast cpu_only(DeviceKind::CPU, kBFloat16);  // CUDA tensors: not concerned
  EXPECT_EQ(matmul(a, b).dtype(), kFloat32);
}

// cross_entropy reads 16-bit logits without a float32 copy: the same loss and gradient bits as
// the cast, for rows a warp takes and rows of a language model's vocabulary (a block each),
// loaded by whole vectors (sizes divisible by 8) or not, and the CPU's values within float32
// rounding of the log-sum-exp.
TEST_F(CudaAmp, CrossEntropyOn16BitLogitsGivesTheFloat32CastsLossAndGradient) {
  for (DType low : {kBFloat16, kFloat16})
    for (int64_t classes : {int64_t(41), int64_t(64), int64_t(50257), int64_t(50304)}) {
      SCOPED_TRACE(std::string(dtype_name(low)) + " classes " + std::to_string(classes));
      const test::AutocastLossCheck r = test::autocast_cross_entropy(kCUDA, low, 33, classes, 5);
      EXPECT_EQ(r.fused_loss.dtype(), kFloat32);
      EXPECT_EQ(r.fused_grad.dtype(), low);
      EXPECT_EQ(values(r.fused_loss), values(r.cast_loss));
      EXPECT_EQ(values(r.fused_grad), values(r.cast_grad));
      const test::AutocastLossCheck cpu = test::autocast_cross_entropy(kCPU, low, 33, classes, 5);
      EXPECT_TRUE(test::all_close(r.fused_loss.cpu(), cpu.fused_loss, 1e-5, 1e-5));
      EXPECT_TRUE(test::all_close(r.fused_grad.cpu().to(kFloat32), cpu.fused_grad.to(kFloat32),
                                  1e-2, 1e-6));
    }
  // Rows that are not whole aligned vectors (one element into a buffer) are read one element at
  // a time, in the same order: the same bits.
  const Tensor x = on_gpu(test::uniform({5, 4096}, 9, -4, 4, kFloat32).to(kBFloat16));
  const Tensor shifted = empty({5 * 4096 + 1}, x.options()).narrow(0, 1, 5 * 4096).view({5, 4096});
  shifted.copy_(x);
  const Tensor t = on_gpu(tensor(std::vector<int64_t>{0, 9, 4095, 17, 300}, {5}));
  amp::autocast ac(kGpu, kBFloat16);
  EXPECT_EQ(values(cross_entropy(shifted, t)), values(cross_entropy(x, t)));
}

TEST_F(CudaAmp, GradientsReachFloat32MasterWeights) {
  const Tensor x = on_gpu(test::uniform({32, 12}, 21, -1, 1, kFloat32));
  const Tensor t = class_targets(32, 6, kCUDA);
  const Tensor img = on_gpu(test::uniform({2, 3, 8, 8}, 22, -1, 1, kFloat32));
  const Tensor img_target = on_gpu(test::uniform({2, 4, 8, 8}, 23, -1, 1, kFloat32));
  for (DType dt : {kBFloat16, kFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    const double rtol = dt == kBFloat16 ? 3e-2 : 5e-3, atol = dt == kBFloat16 ? 3e-3 : 5e-4;
    Mlp ref = make_mlp(12, 24, 6, 30, kCUDA), got = make_mlp(12, 24, 6, 30, kCUDA);
    Tensor loss, mask;
    {
      amp::autocast ac(kGpu, dt);
      loss = cross_entropy(mlp_logits(got, x), t);
      NoGradGuard no_grad;
      mask = gt(linear(x, got.w1, got.b1), 0.0).to(kFloat32);
    }
    // The float32 reference takes the relu branches the autocast forward took: a
    // pre-activation within 16-bit rounding of 0 may round to 0 or change sign (here sample 5,
    // unit 4: 0.000876 in float32, exactly 0 in bfloat16, on the CPU too), and relu' then
    // drops that sample's whole term from the unit's gradients, which no tolerance on
    // rounding covers. Where both take the same branch (all but such units) h * mask is relu(h).
    cross_entropy(linear(mul(linear(x, ref.w1, ref.b1), mask), ref.w2, ref.b2), t).backward();
    EXPECT_EQ(loss.dtype(), kFloat32);
    loss.backward();
    const auto want = ref.params(), have = got.params();
    for (size_t i = 0; i < have.size(); ++i) {
      EXPECT_EQ(have[i].grad().dtype(), kFloat32) << i;
      EXPECT_EQ(have[i].grad().device(), kCUDA) << i;
      EXPECT_TRUE(test::all_close(have[i].grad().cpu(), want[i].grad().cpu(), rtol, atol)) << i;
    }
    // A convolution, too.
    Tensor k_ref = leaf({4, 3, 3, 3}, 40, kCUDA), k = leaf({4, 3, 3, 3}, 40, kCUDA);
    Tensor kb_ref = leaf({4}, 41, kCUDA), kb = leaf({4}, 41, kCUDA);
    mse_loss(conv2d(img, k_ref, kb_ref, {1, 1}, {1, 1}), img_target).backward();
    {
      amp::autocast ac(kGpu, dt);
      loss = mse_loss(conv2d(img, k, kb, {1, 1}, {1, 1}), img_target);
    }
    loss.backward();
    EXPECT_EQ(k.grad().dtype(), kFloat32);
    EXPECT_TRUE(test::all_close(k.grad().cpu(), k_ref.grad().cpu(), rtol, atol));
    EXPECT_TRUE(test::all_close(kb.grad().cpu(), kb_ref.grad().cpu(), rtol, atol));
  }
}

// ---------------------------------------------------------------- GradScaler kernels

TEST_F(CudaAmp, UnscaleMatchesTheCpuAndFindsOneInf) {
  // Enough tensors to split the multi-tensor launches, some longer than a chunk.
  std::vector<Shape> shapes;
  for (int i = 0; i < 130; ++i) shapes.push_back({int64_t(1 + (i * 37) % 300)});
  shapes.push_back({70001});
  shapes.push_back({3, 65537});
  for (DType dt : {kFloat32, kFloat16, kBFloat16}) {
    for (bool plant_inf : {false, true}) {
      SCOPED_TRACE(detail::cat(dtype_name(dt), plant_inf ? " with inf" : ""));
      std::vector<Tensor> cpu, gpu;
      for (size_t i = 0; i < shapes.size(); ++i) {
        Tensor p = zeros(shapes[i], dt).requires_grad_();
        cpu.push_back(p);
        gpu.push_back(zeros(shapes[i], TensorOptions(dt).device(kCUDA)).requires_grad_());
        Tensor g = test::uniform(shapes[i], 100 + i, -4000, 4000, dt);
        if (plant_inf && i + 1 == shapes.size()) {
          Tensor flat = g.reshape({-1});
          flat.narrow(0, 100000, 1).fill_(kInf);
        }
        cpu.back().set_grad(g);
        gpu.back().set_grad(g.to(kCUDA));
      }
      optim::SGD cpu_opt(cpu, {.lr = 0.1}), gpu_opt(gpu, {.lr = 0.1});
      amp::GradScaler cpu_scaler(DeviceKind::CPU, {.init_scale = 3000});  // not a power of 2
      amp::GradScaler gpu_scaler(kGpu, {.init_scale = 3000});
      cpu_scaler.scale(ones({}));
      gpu_scaler.scale(ones({}, TensorOptions().device(kCUDA)));
      cpu_scaler.unscale_(cpu_opt);
      gpu_scaler.unscale_(gpu_opt);
      EXPECT_EQ(gpu_scaler.found_inf_host(gpu_opt), plant_inf);
      EXPECT_EQ(cpu_scaler.found_inf_host(cpu_opt), plant_inf);
      for (size_t i = 0; i < shapes.size(); ++i)
        ASSERT_EQ(values(gpu[i].grad()), values(cpu[i].grad())) << "tensor " << i;
    }
  }
}

TEST_F(CudaAmp, ASkippedStepLeavesParametersStateAndCountersBitwiseAlone) {
  using MakeOpt = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;
  const std::vector<MakeOpt> makers = {
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::SGD>(std::move(p),
                                            optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
      },
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::Adam>(std::move(p), optim::AdamOptions{.amsgrad = true});
      },
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::NAdam>(std::move(p), optim::NAdamOptions{});
      },
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::RMSprop>(
            std::move(p), optim::RMSpropOptions{.momentum = 0.5, .centered = true});
      },
  };
  for (DType dt : {kFloat32, kFloat16, kBFloat16})
    for (size_t m = 0; m < makers.size(); ++m) {
      SCOPED_TRACE(detail::cat(dtype_name(dt), " optimizer ", m));
      Tensor w = leaf({40, 30}, 1, kCUDA, dt), b = leaf({30}, 2, kCUDA, dt);
      auto opt = makers[m]({w, b});
      amp::GradScaler scaler(kGpu, {.init_scale = 512});
      auto run = [&](double f) {
        opt->zero_grad();
        scaler.scale(mul(sum(square(add(w, b))).to(kFloat32), f)).backward();
        scaler.step(*opt);
        scaler.update();
      };
      run(1);
      run(1);  // state exists; the optimizer skips on the device from here
      // Not always 512: with SGD (lr 0.1, momentum 0.9) b's update overshoots about 7-fold,
      // so the second step's scaled float16 gradient of b (up to ~1.6e5) overflows and that
      // step is skipped (the CPU scaler does the same).
      const double scale = scaler.get_scale();
      const auto before = snapshot(*opt, {w, b});
      run(kInf);
      EXPECT_TRUE(before == snapshot(*opt, {w, b}));
      EXPECT_EQ(scaler.get_scale(), scale / 2);
      run(kNaN);
      EXPECT_TRUE(before == snapshot(*opt, {w, b}));
      EXPECT_EQ(scaler.get_scale(), scale / 4);
      run(1);
      EXPECT_FALSE(before == snapshot(*opt, {w, b}));
    }
}

TEST_F(CudaAmp, GradScalerScheduleMatchesTheCpu) {
  const std::vector<double> factors = {1, 1, 1, kInf, 1, 1, 1, 1, kNaN, 1, 1, 1, 1};
  std::vector<std::vector<double>> scales(2), trackers(2);
  std::vector<std::vector<Tensor>> params(2);
  for (int d = 0; d < 2; ++d) {
    const Device dev = d == 0 ? kCPU : kCUDA;
    const Tensor X = test::uniform({16, 5}, 1, -1, 1, kFloat32).to(dev);
    const Tensor Y = test::uniform({16, 3}, 2, -1, 1, kFloat32).to(dev);
    Tensor W = leaf({5, 3}, 3, dev), bias = leaf({3}, 4, dev);
    optim::Adam opt({W, bias}, {.lr = 0.05});
    amp::GradScaler scaler(dev.kind, {.init_scale = 1024, .growth_interval = 3});
    for (double f : factors) {
      opt.zero_grad();
      Tensor loss = mul(mean(square(sub(add(matmul(X, W), bias), Y))), f);
      scaler.scale(loss).backward();
      scaler.step(opt);
      scaler.update();
      scales[size_t(d)].push_back(scaler.get_scale());
      trackers[size_t(d)].push_back(scaler.state_dict().at("_growth_tracker").item<double>());
    }
    EXPECT_EQ(opt.state(W).at("step").item<double>(), 11.0);
    params[size_t(d)] = {W.detach().cpu(), bias.detach().cpu()};
  }
  EXPECT_EQ(scales[1], scales[0]);
  EXPECT_EQ(trackers[1], trackers[0]);
  for (size_t i = 0; i < 2; ++i)
    EXPECT_TRUE(test::all_close(params[1][i], params[0][i], 1e-5, 1e-6)) << i;
}

// ---------------------------------------------------------------- training

TEST_F(CudaAmp, Float16TrainingWithAScalerTracksFloat32) {
  const int64_t n = 256, in = 32, hidden = 64, classes = 8;
  const Tensor x = on_gpu(test::uniform({n, in}, 7, -1, 1, kFloat32));
  const Tensor teacher = on_gpu(test::uniform({in, classes}, 8, -1, 1, kFloat32));
  const Tensor y = argmax(matmul(x, teacher), 1);
  auto train = [&](bool fp16, double* first, int* skipped) {
    Mlp net = make_mlp(in, hidden, classes, 60, kCUDA);
    optim::Adam opt(net.params(), {.lr = 1e-2});
    amp::GradScaler scaler(kGpu, {.enabled = fp16});  // PyTorch's defaults: 2^16 to start
    for (int step = 0; step < 50; ++step) {
      opt.zero_grad();
      Tensor loss;
      {
        amp::autocast ac(kGpu, kFloat16, fp16);
        loss = cross_entropy(mlp_logits(net, x), y);
      }
      if (step == 0) *first = loss.item<double>();
      const double before = scaler.get_scale();
      scaler.scale(loss).backward();
      scaler.step(opt);
      scaler.update();
      if (scaler.get_scale() < before) ++*skipped;
    }
    for (const Tensor& p : net.params()) EXPECT_EQ(p.dtype(), kFloat32);
    return cross_entropy(mlp_logits(net, x), y).item<double>();  // evaluated in float32
  };
  double first32 = 0, first16 = 0;
  int skipped32 = 0, skipped16 = 0;
  const double last32 = train(false, &first32, &skipped32);
  const double last16 = train(true, &first16, &skipped16);
  EXPECT_LT(last32, 0.6 * first32);  // it learns
  EXPECT_NEAR(first16, first32, 1e-2);
  EXPECT_NEAR(last16, last32, 0.01 + 0.02 * last32);
  EXPECT_LE(skipped16, 2);  // an early overflow or two is how the scale finds its level
  EXPECT_EQ(skipped32, 0);
}

TEST_F(CudaAmp, AnAmpStepReplaysFromACudaGraph) {
  const int64_t n = 64, in = 16, hidden = 32, classes = 5;
  const int steps = 12, inf_step = 7;  // the batch of inf_step holds an inf: a skipped step
  std::vector<Tensor> xs, ys;
  for (int s = 0; s < steps; ++s) {
    Tensor x = test::uniform({n, in}, 200 + uint64_t(s), -1, 1, kFloat32);
    if (s == inf_step) x.narrow(0, 3, 1).fill_(kInf);
    xs.push_back(x.to(kCUDA));
    std::vector<int64_t> y;
    for (int64_t i = 0; i < n; ++i) y.push_back((i * 3 + s) % classes);
    ys.push_back(tensor(y, {n}).to(kCUDA));
  }
  // One training setup; the step reads its batch from the static x and y.
  struct Run {
    Mlp net;
    std::unique_ptr<optim::Adam> opt;
    amp::GradScaler scaler;
    Tensor x, y, loss;
  };
  auto make_run = [&] {
    Run r{make_mlp(in, hidden, classes, 90, kCUDA),
          nullptr,
          amp::GradScaler(kGpu),
          zeros({n, in}, TensorOptions().device(kCUDA)),
          zeros({n}, TensorOptions(kInt64).device(kCUDA)),
          zeros({}, TensorOptions().device(kCUDA))};
    r.opt = std::make_unique<optim::Adam>(r.net.params(), optim::AdamOptions{.lr = 1e-2});
    return r;
  };
  auto step = [](Run& r) {
    r.opt->zero_grad();
    Tensor loss;
    {
      amp::autocast ac(kGpu, kFloat16);
      loss = cross_entropy(mlp_logits(r.net, r.x), r.y);
    }
    r.scaler.scale(loss).backward();
    r.scaler.step(*r.opt);  // unscales, then skips on the device if a gradient overflowed
    r.scaler.update();
    NoGradGuard no_grad;
    r.loss.copy_(loss.detach());
  };

  Run eager = make_run();
  std::vector<double> eager_scales, eager_losses;
  for (int s = 0; s < steps; ++s) {
    eager.x.copy_(xs[size_t(s)]);
    eager.y.copy_(ys[size_t(s)]);
    step(eager);
    eager_scales.push_back(eager.scaler.get_scale());
    eager_losses.push_back(eager.loss.item<double>());
  }
  ASSERT_EQ(eager_scales[inf_step], eager_scales[inf_step - 1] / 2);

  Run graphed = make_run();
  CUDAGraph graph;
  for (int s = 0; s < steps; ++s) {
    graphed.x.copy_(xs[size_t(s)]);
    graphed.y.copy_(ys[size_t(s)]);
    if (s < 2) {  // warm-up: the scale, the optimizer state and the flags come to exist
      step(graphed);
      continue;
    }
    if (s == 2) {
      graph.capture_begin();
      step(graphed);
      graph.capture_end();  // throws if anything in the step synchronised with the host
    }
    const auto before = snapshot(*graphed.opt, graphed.net.params());
    graphed.opt->prepare_step();
    graph.replay();
    if (s == inf_step) {
      EXPECT_TRUE(before == snapshot(*graphed.opt, graphed.net.params())) << "skipped step";
    }
    EXPECT_EQ(graphed.scaler.get_scale(), eager_scales[size_t(s)]) << "step " << s;
    const double loss = graphed.loss.item<double>(), want = eager_losses[size_t(s)];
    if (s == inf_step)
      EXPECT_FALSE(std::isfinite(loss));
    else
      EXPECT_NEAR(loss, want, 1e-5 * std::abs(want)) << "step " << s;
  }
  const auto want = eager.net.params(), got = graphed.net.params();
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_TRUE(test::all_close(got[i].detach().cpu(), want[i].detach().cpu(), 1e-5, 1e-6)) << i;
  EXPECT_EQ(graphed.opt->state(got[0]).at("step").item<double>(), steps - 1.0);
  EXPECT_EQ(eager.opt->state(want[0]).at("step").item<double>(), steps - 1.0);
}

// ---------------------------------------------------------------- TF32

TEST_F(CudaAmp, Tf32SwitchChangesFloat32Products) {
  const Tensor a = test::uniform({256, 512}, 1, -1, 1, kFloat64);
  const Tensor b = test::uniform({512, 128}, 2, -1, 1, kFloat64);
  const Tensor exact = matmul(a, b);
  const Tensor a32 = a.to(kCUDA, kFloat32), b32 = b.to(kCUDA, kFloat32);
  auto error = [&] {
    return max(abs(sub(matmul(a32, b32).cpu().to(kFloat64), exact))).item<double>();
  };
  ASSERT_FALSE(allow_tf32());
  const double ieee = error();
  set_allow_tf32(true);
  EXPECT_TRUE(allow_tf32());
  const double tf32 = error();
  set_allow_tf32(false);
  EXPECT_FALSE(allow_tf32());
  EXPECT_LT(ieee, 1e-4);
  EXPECT_GT(tf32, 4 * ieee);  // 10-bit mantissa inputs
  EXPECT_LT(tf32, 5e-2);
  EXPECT_EQ(error(), ieee);  // off again
}
