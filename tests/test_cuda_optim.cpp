// The fused optimizer updates and gradient clipping on CUDA against the CPU ones (the
// reference): every optimizer with options reaching every branch, many tensors of odd sizes
// in one group (chunked multi-tensor launches, launches split over tensors and blocks),
// learning-rate changes, state dicts moved between devices, and steps replayed from a CUDA
// graph. Skipped without a GPU.
#include <cmath>
#include <functional>
#include <memory>

#include "anvil/optim/optim.h"
#include "support/check.h"
#include "support/optim_cases.h"

using namespace anvil;
using test::make;
using test::MakeOpt;
using test::optimizer_cases;
using test::random_tensors;

namespace {

class CudaOptim : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device";
  }
};

// 30 tensors in one group (more than one launch's worth), of odd sizes, some spanning
// several chunks of 65536 elements.
std::vector<Shape> odd_shapes() {
  std::vector<Shape> s = {{1},    {3},     {4097}, {65537}, {2, 3},  {},       {7, 1, 5}, {33},
                          {1000}, {5, 13}, {2},    {127},   {129},   {16, 16}, {4095},    {11},
                          {1, 1}, {300},   {8, 9}, {0},     {65536}, {131073}, {17},      {19},
                          {23},   {29},    {31},   {37},    {3, 41}, {43}};
  return s;
}

std::vector<Tensor> leaves_on(const std::vector<Tensor>& ts, Device d) {
  std::vector<Tensor> out;
  for (const auto& t : ts) out.push_back(t.to(d).clone().requires_grad_());  // never aliases t
  return out;
}

// Parameters and their optimizer state on CUDA (or wherever `cuda` lives: the state must be
// there too) against the CPU, element-wise.
::testing::AssertionResult same_params_and_state(const optim::Optimizer& cpu_opt,
                                                 const std::vector<Tensor>& cpu,
                                                 const optim::Optimizer& cuda_opt,
                                                 const std::vector<Tensor>& cuda, double rtol,
                                                 double atol) {
  for (size_t i = 0; i < cpu.size(); ++i) {
    auto r = test::all_close(cuda[i].detach().cpu(), cpu[i].detach(), rtol, atol);
    if (!r) return r << " (" << cpu_opt.name() << ", parameter " << i << ")";
    const StateDict& want = cpu_opt.state(cpu[i]);
    const StateDict& got = cuda_opt.state(cuda[i]);
    if (want.size() != got.size())
      return ::testing::AssertionFailure() << cpu_opt.name() << ": parameter " << i << " has "
                                           << got.size() << " state entries, want " << want.size();
    for (const auto& [k, v] : want) {
      if (!got.count(k) || got.at(k).device() != cuda[i].device())
        return ::testing::AssertionFailure() << cpu_opt.name() << ": state " << k
                                             << " is missing or not on " << cuda[i].device().str();
      auto rs = test::all_close(got.at(k).cpu(), v, rtol, atol);
      if (!rs) return rs << " (" << cpu_opt.name() << ", state." << i << "." << k << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

// `steps` steps with the same random gradients on both devices; the learning rate changes
// halfway.
::testing::AssertionResult cuda_matches_cpu(const MakeOpt& make_opt, DType dt, int steps,
                                            double rtol, double atol,
                                            const std::vector<Shape>& shapes = odd_shapes()) {
  const auto start = random_tensors(shapes, 3, dt);
  auto cpu = leaves_on(start, kCPU), cuda = leaves_on(start, kCUDA);
  auto cpu_opt = make_opt(cpu), cuda_opt = make_opt(cuda);
  for (int s = 0; s < steps; ++s) {
    if (s == steps / 2) {
      cpu_opt->set_lr(cpu_opt->lr() * 0.5);
      cuda_opt->set_lr(cuda_opt->lr() * 0.5);
    }
    const auto grads = random_tensors(shapes, 50 + s, dt, -2, 2);
    for (size_t i = 0; i < shapes.size(); ++i) {
      cpu[i].set_grad(grads[i]);
      cuda[i].set_grad(grads[i].cuda());
    }
    cpu_opt->step();
    cuda_opt->step();
  }
  return same_params_and_state(*cpu_opt, cpu, *cuda_opt, cuda, rtol, atol);
}

}  // namespace

TEST_F(CudaOptim, EveryOptimizerMatchesTheCpuFloat32) {
  for (const auto& make_opt : optimizer_cases())
    EXPECT_TRUE(cuda_matches_cpu(make_opt, kFloat32, 10, 1e-5, 1e-6));
}

TEST_F(CudaOptim, EveryOptimizerMatchesTheCpuFloat64) {
  for (const auto& make_opt : optimizer_cases())
    EXPECT_TRUE(cuda_matches_cpu(make_opt, kFloat64, 6, 1e-12, 1e-14));
}

TEST_F(CudaOptim, SixteenBitParametersWithFloat32State) {
  for (DType dt : {kBFloat16, kFloat16})
    for (const auto& make_opt : optimizer_cases()) {
      EXPECT_TRUE(cuda_matches_cpu(make_opt, dt, 4, 1e-2, 1e-3)) << dtype_name(dt);
    }
  Tensor w = zeros({5}, TensorOptions(kBFloat16).device(kCUDA)).requires_grad_();
  optim::Adam opt({w});
  w.set_grad(full({5}, 0.5, TensorOptions(kBFloat16).device(kCUDA)));
  opt.step();
  EXPECT_EQ(opt.state(w).at("exp_avg").dtype(), kFloat32);
}

TEST_F(CudaOptim, LaunchesSplitOverBlocks) {
  // More chunks than one launch takes (320 blocks of 65536 elements), between small tensors.
  const std::vector<Shape> shapes = {{5}, {320 * 65536 + 7}, {3}, {65537}};
  EXPECT_TRUE(cuda_matches_cpu(make<optim::Adam>(optim::AdamOptions{.lr = 0.01}), kFloat32, 2, 1e-5,
                               1e-6, shapes));
}

TEST_F(CudaOptim, GroupsWithTheirOwnLearningRates) {
  const auto start = random_tensors(odd_shapes(), 5, kFloat32);
  auto cpu = leaves_on(start, kCPU), cuda = leaves_on(start, kCUDA);
  auto groups = [](const std::vector<Tensor>& ps) {
    std::vector<optim::ParamGroup> g(3);
    for (size_t i = 0; i < ps.size(); ++i) g[i % 3].params.push_back(ps[i]);
    g[1].options = {{"lr", 0.003}};
    g[2].options = {{"lr", 0.03}, {"beta1", 0.7}};
    return g;
  };
  optim::Adam cpu_opt(groups(cpu), {.lr = 0.01}), cuda_opt(groups(cuda), {.lr = 0.01});
  for (int s = 0; s < 6; ++s) {
    if (s == 3) {  // as a scheduler does: one group only
      cpu_opt.param_groups()[1].options["lr"] = 0.3;
      cuda_opt.param_groups()[1].options["lr"] = 0.3;
    }
    const auto grads = random_tensors(odd_shapes(), 70 + s, kFloat32);
    for (size_t i = 0; i < cpu.size(); ++i) {
      cpu[i].set_grad(grads[i]);
      cuda[i].set_grad(grads[i].cuda());
    }
    cpu_opt.step();
    cuda_opt.step();
  }
  EXPECT_TRUE(same_params_and_state(cpu_opt, cpu, cuda_opt, cuda, 1e-5, 1e-6));
  EXPECT_TRUE(cuda_opt.lr_tensor(1, kCUDA).device().is_cuda());
  EXPECT_EQ(cuda_opt.lr_tensor(1, kCUDA).item<double>(), 0.3);
}

TEST_F(CudaOptim, StateDictRoundTripBetweenDevices) {
  for (const auto& make_opt : optimizer_cases()) {
    const auto shapes = odd_shapes();
    const auto start = random_tensors(shapes, 11, kFloat32);
    // Straight through on the CPU.
    auto straight = leaves_on(start, kCPU);
    auto straight_opt = make_opt(straight);
    // CPU for 3 steps, CUDA for 3, back to the CPU for 3.
    auto a = leaves_on(start, kCPU);
    auto a_opt = make_opt(a);
    std::vector<Tensor> b;
    std::unique_ptr<optim::Optimizer> b_opt;
    std::vector<Tensor> c;
    std::unique_ptr<optim::Optimizer> c_opt;
    for (int s = 0; s < 9; ++s) {
      if (s == 3) {
        b.clear();
        for (const auto& p : a) b.push_back(p.detach().cuda().requires_grad_());
        b_opt = make_opt(b);
        b_opt->load_state_dict(a_opt->state_dict());
        for (const auto& [k, v] : b_opt->state(b[0]))
          EXPECT_TRUE(v.device().is_cuda()) << b_opt->name() << " state " << k;
      }
      if (s == 6) {
        c.clear();
        for (const auto& p : b) c.push_back(p.detach().cpu().requires_grad_());
        c_opt = make_opt(c);
        c_opt->load_state_dict(b_opt->state_dict());
        for (const auto& [k, v] : c_opt->state(c[0]))
          EXPECT_TRUE(v.device().is_cpu()) << c_opt->name() << " state " << k;
      }
      const auto grads = random_tensors(shapes, 90 + s, kFloat32, -2, 2);
      std::vector<Tensor>& cur = s < 3 ? a : s < 6 ? b : c;
      optim::Optimizer& cur_opt = s < 3 ? *a_opt : s < 6 ? *b_opt : *c_opt;
      for (size_t i = 0; i < shapes.size(); ++i) {
        straight[i].set_grad(grads[i]);
        cur[i].set_grad(grads[i].to(cur[i].device()));
      }
      straight_opt->step();
      cur_opt.step();
    }
    // The CUDA leg may differ from the CPU by rounding (pow, in-device double arithmetic).
    EXPECT_TRUE(same_params_and_state(*straight_opt, straight, *c_opt, c, 1e-5, 1e-6));
  }
}

TEST_F(CudaOptim, StepReplaysFromACudaGraph) {
  const auto shapes = odd_shapes();
  for (const auto& make_opt : optimizer_cases()) {
    const auto start = random_tensors(shapes, 13, kFloat32);
    auto cpu = leaves_on(start, kCPU), cuda = leaves_on(start, kCUDA);
    auto cpu_opt = make_opt(cpu), cuda_opt = make_opt(cuda);
    // Static gradients the graph reads; each step copies new values into them.
    std::vector<Tensor> grads;
    for (auto& p : cuda) {
      grads.push_back(zeros(p.shape(), p.options()));
      p.set_grad(grads.back());
    }
    CUDAGraph graph;
    uint64_t version = 0;
    for (int s = 0; s < 8; ++s) {
      if (s == 5) {
        cpu_opt->set_lr(cpu_opt->lr() * 0.25);
        cuda_opt->set_lr(cuda_opt->lr() * 0.25);
      }
      const auto g = random_tensors(shapes, 110 + s, kFloat32, -2, 2);
      for (size_t i = 0; i < shapes.size(); ++i) {
        cpu[i].set_grad(g[i]);
        grads[i].copy_(g[i]);
      }
      cpu_opt->step();
      if (s == 0) {  // warm-up: creates the state and the learning-rate tensor
        cuda_opt->step();
        continue;
      }
      if (s == 1) {
        version = cuda_opt->hyper_version();
        graph.capture_begin();
        cuda_opt->step();
        graph.capture_end();
      }
      cuda_opt->prepare_step();  // pushes a changed learning rate outside the graph
      ASSERT_EQ(cuda_opt->hyper_version(), version);
      graph.replay();
    }
    EXPECT_TRUE(same_params_and_state(*cpu_opt, cpu, *cuda_opt, cuda, 1e-5, 1e-6));
  }
}

TEST_F(CudaOptim, ClipGradNormMatchesTheCpu) {
  const auto shapes = odd_shapes();
  for (double p : {2.0, 1.0, 3.5, double(INFINITY)})
    for (double max_norm : {0.5, 1e6}) {
      const auto grads = random_tensors(shapes, 130, kFloat32, -3, 3);
      auto cpu = leaves_on(random_tensors(shapes, 1, kFloat32), kCPU);
      auto cuda = leaves_on(random_tensors(shapes, 1, kFloat32), kCUDA);
      for (size_t i = 0; i < shapes.size(); ++i) {
        cpu[i].set_grad(grads[i].clone());
        cuda[i].set_grad(grads[i].cuda());
      }
      Tensor want = optim::clip_grad_norm_(cpu, max_norm, p);
      Tensor got = optim::clip_grad_norm_(cuda, max_norm, p);
      EXPECT_TRUE(got.device().is_cuda());
      EXPECT_TRUE(test::all_close(got.cpu(), want, 1e-6, 0)) << p;
      for (size_t i = 0; i < shapes.size(); ++i)
        EXPECT_TRUE(test::all_close(cuda[i].grad().cpu(), cpu[i].grad(), 1e-6, 1e-7)) << p;
    }
  // A NaN gradient: the norm is NaN, and error_if_nonfinite (which reads it) refuses.
  Tensor w = zeros({3}, TensorOptions(kFloat32).device(kCUDA)).requires_grad_();
  w.set_grad(tensor(std::vector<float>{1, NAN, 2}).cuda());
  EXPECT_TRUE(std::isnan(optim::clip_grad_norm_({w}, 1.0).item<double>()));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { optim::clip_grad_norm_({w}, 1.0, 2.0, true); },
                                            {"clip_grad_norm_", "nan"}));
}

TEST_F(CudaOptim, ClipAndStepInOneGraph) {
  const auto shapes = odd_shapes();
  const auto start = random_tensors(shapes, 17, kFloat32);
  auto cpu = leaves_on(start, kCPU), cuda = leaves_on(start, kCUDA);
  optim::AdamW cpu_opt(cpu, {.lr = 0.01}), cuda_opt(cuda, {.lr = 0.01});
  std::vector<Tensor> grads;
  for (auto& p : cuda) {
    grads.push_back(zeros(p.shape(), p.options()));
    p.set_grad(grads.back());
  }
  CUDAGraph graph;
  Tensor norm;
  for (int s = 0; s < 5; ++s) {
    const auto g = random_tensors(shapes, 150 + s, kFloat32, -2, 2);
    for (size_t i = 0; i < shapes.size(); ++i) {
      cpu[i].set_grad(g[i].clone());
      grads[i].copy_(g[i]);
    }
    Tensor want = optim::clip_grad_norm_(cpu, 1.0);
    cpu_opt.step();
    if (s == 0) {
      optim::clip_grad_norm_(cuda, 1.0);
      cuda_opt.step();
      continue;
    }
    if (s == 1) {
      graph.capture_begin();
      norm = optim::clip_grad_norm_(cuda, 1.0);  // lives in the graph's pool
      cuda_opt.step();
      graph.capture_end();
    }
    cuda_opt.prepare_step();
    graph.replay();
    EXPECT_TRUE(test::all_close(norm.cpu(), want, 1e-6, 0)) << s;
  }
  EXPECT_TRUE(same_params_and_state(cpu_opt, cpu, cuda_opt, cuda, 1e-5, 1e-6));
}
