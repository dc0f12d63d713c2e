// CUDA convolution (cuDNN), pooling and batch norm against the CPU reference, forward and
// backward, and a tiny CNN trained for a few SGD steps on both devices from the same weights.
// Skipped without a GPU.
#include <functional>

#include "support/check.h"

using namespace anvil;

namespace {

class CudaNnOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device";
    full({1 << 20}, NAN, kCUDA);  // poison freed device memory
  }
};

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct Tol {
  double rtol, atol;
};

// Tolerances for sums over `len` terms of values in [-1, 1].
Tol tol_for(DType dt, int64_t len = 1) {
  switch (dt) {
    case kFloat32: return {1e-5, 2e-6 * double(len)};
    case kFloat64: return {1e-12, 1e-13 * double(len)};
    case kFloat16:
    case kBFloat16: return {2e-2, 2e-2 * std::max(1.0, double(len) / 64)};
    default: return {0, 0};
  }
}

::testing::AssertionResult close(const Tensor& cuda, const Tensor& cpu, Tol tol,
                                 const std::string& what) {
  if (!cuda.defined() || !cpu.defined())
    return ::testing::AssertionFailure() << what << ": undefined";
  if (!cuda.device().is_cuda()) return ::testing::AssertionFailure() << what << ": not on CUDA";
  if (cuda.dtype() != cpu.dtype())
    return ::testing::AssertionFailure() << what << ": dtype " << dtype_name(cuda.dtype());
  auto r = test::all_close(cuda.cpu().to(kFloat64), cpu.to(kFloat64), tol.rtol, tol.atol);
  if (!r) return ::testing::AssertionFailure() << what << ": " << r.message();
  return r;
}

// f on CPU leaves made from `inputs` and on their CUDA copies: the outputs, and (for floating
// dtypes) the gradients of sum(out * g) for a random g, must agree (grad_tol[i] for input i).
::testing::AssertionResult same_on_cuda_impl(const Fn& f, const std::vector<Tensor>& inputs,
                                             Tol tol, const std::vector<Tol>& grad_tol) {
  const bool grads = inputs[0].is_floating_point();
  std::vector<Tensor> cpu, gpu;
  for (const Tensor& x : inputs) {
    cpu.push_back(x.defined() ? x.contiguous().detach() : Tensor());
    gpu.push_back(x.defined() ? x.cuda().detach() : Tensor());
    if (grads && x.defined()) {
      cpu.back().requires_grad_();
      gpu.back().requires_grad_();
    }
  }
  Tensor out_cpu = f(cpu), out_gpu = f(gpu);
  auto r = close(out_gpu, out_cpu, tol, "output");
  if (!r || !grads) return r;
  Tensor g = test::uniform(out_cpu.shape(), 99, -1, 1).to(out_cpu.dtype());
  out_cpu.backward(g);
  out_gpu.backward(g.cuda());
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (!inputs[i].defined()) continue;
    r = close(gpu[i].grad(), cpu[i].grad(), grad_tol[std::min(i, grad_tol.size() - 1)],
              "grad of input " + std::to_string(i));
    if (!r) return r;
  }
  return r;
}

// The same, with an exception reported as a failure (so one case cannot hide the others).
::testing::AssertionResult same_on_cuda(const Fn& f, const std::vector<Tensor>& inputs, Tol tol,
                                        const std::vector<Tol>& grad_tol) {
  try {
    return same_on_cuda_impl(f, inputs, tol, grad_tol);
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw: " << e.what();
  }
}

Tensor rnd(const Shape& s, uint64_t seed, DType dt, double lo = -1, double hi = 1) {
  return test::uniform(s, seed, lo, hi).to(dt);
}

// ---- convolution --------------------------------------------------------------------------

struct ConvCase {
  int64_t n, c, h, w, k, kh, kw;
  Pair stride, padding, dilation;
  int64_t groups;
  bool bias;
};

TEST_F(CudaNnOps, Conv2dForwardAndBackward) {
  const ConvCase cases[] = {
      {2, 3, 9, 9, 4, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, true},
      {1, 4, 10, 7, 6, 3, 2, {2, 1}, {1, 0}, {1, 1}, 2, true},
      {3, 6, 11, 11, 6, 3, 3, {2, 2}, {2, 2}, {2, 2}, 3, false},
      {2, 8, 8, 8, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, 8, true},    // depthwise
      {4, 16, 5, 5, 32, 1, 1, {1, 1}, {0, 0}, {1, 1}, 1, true},  // 1x1
      {1, 1, 1, 1, 1, 1, 1, {1, 1}, {0, 0}, {1, 1}, 1, true},
      {2, 5, 13, 6, 7, 5, 3, {3, 2}, {2, 1}, {1, 2}, 1, true},
  };
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kFloat16})
    for (const ConvCase& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " C=" + std::to_string(c.c) +
                   " K=" + std::to_string(c.k) + " groups=" + std::to_string(c.groups));
      const int64_t oh = (c.h + 2 * c.padding[0] - c.dilation[0] * (c.kh - 1) - 1) / c.stride[0] + 1;
      const int64_t ow = (c.w + 2 * c.padding[1] - c.dilation[1] * (c.kw - 1) - 1) / c.stride[1] + 1;
      const int64_t fan_in = c.c / c.groups * c.kh * c.kw;
      const Tol out_t = tol_for(dt, fan_in);
      const Tol gx_t = tol_for(dt, c.k / c.groups * c.kh * c.kw);
      const Tol gw_t = tol_for(dt, c.n * oh * ow);
      std::vector<Tensor> in = {rnd({c.n, c.c, c.h, c.w}, 1, dt),
                                rnd({c.k, c.c / c.groups, c.kh, c.kw}, 2, dt),
                                c.bias ? rnd({c.k}, 3, dt) : Tensor()};
      EXPECT_TRUE(same_on_cuda(
          [&](const std::vector<Tensor>& v) {
            return conv2d(v[0], v[1], v[2], c.stride, c.padding, c.dilation, c.groups);
          },
          in, out_t, {gx_t, gw_t, gw_t}));
    }
}

TEST_F(CudaNnOps, Conv2dAlgorithmCacheAndUnbatchedInput) {
  // The same geometry twice (the second call takes the cached algorithm), then CHW input.
  for (int rep = 0; rep < 2; ++rep)
    EXPECT_TRUE(same_on_cuda(
        [](const std::vector<Tensor>& v) { return conv2d(v[0], v[1], v[2], {1, 1}, {1, 1}); },
        {rnd({8, 16, 12, 12}, 4, kFloat32), rnd({32, 16, 3, 3}, 5, kFloat32),
         rnd({32}, 6, kFloat32)},
        tol_for(kFloat32, 144), {tol_for(kFloat32, 288), tol_for(kFloat32, 8 * 144)}));
  EXPECT_TRUE(same_on_cuda(
      [](const std::vector<Tensor>& v) { return conv2d(v[0], v[1]); },
      {rnd({3, 6, 6}, 7, kFloat64), rnd({2, 3, 3, 3}, 8, kFloat64)}, tol_for(kFloat64, 27),
      {tol_for(kFloat64, 36)}));
}

// ---- pooling ------------------------------------------------------------------------------

struct PoolCase {
  int64_t n, c, h, w;
  Pair kernel, stride, padding, dilation;
  bool ceil_mode, include_pad;
};

const PoolCase kPoolCases[] = {
    {2, 3, 8, 8, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false, true},
    {1, 2, 9, 7, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true, true},
    {2, 2, 9, 7, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true, false},
    {1, 3, 10, 11, {3, 2}, {1, 3}, {1, 1}, {2, 1}, false, false},
    {3, 1, 5, 5, {5, 5}, {1, 1}, {2, 2}, {1, 1}, false, true},
    {1, 1, 7, 7, {2, 3}, {3, 2}, {0, 1}, {3, 2}, true, true},
};

TEST_F(CudaNnOps, MaxPool2dMatchesCpuIncludingTies) {
  for (DType dt : {kFloat32, kFloat64, kBFloat16})
    for (const PoolCase& p : kPoolCases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + std::to_string(p.h) + "x" +
                   std::to_string(p.w) + " k=" + std::to_string(p.kernel[0]) +
                   " ceil=" + std::to_string(p.ceil_mode));
      auto f = [&](const std::vector<Tensor>& v) {
        return max_pool2d(v[0], p.kernel, p.stride, p.padding, p.dilation, p.ceil_mode);
      };
      // Continuous values, then few distinct values: ties must route the gradient to the
      // first maximum of each window, as on the CPU.
      EXPECT_TRUE(same_on_cuda(f, {rnd({p.n, p.c, p.h, p.w}, 10, dt)}, tol_for(dt), {tol_for(dt)}));
      Tensor ties = rnd({p.n, p.c, p.h, p.w}, 11, kFloat64, 0, 3).to(kInt64).to(dt);
      EXPECT_TRUE(same_on_cuda(f, {ties}, tol_for(dt), {tol_for(dt)}));
    }
  // Integer inputs (forward only) and NaN propagation.
  Tensor ints = test::uniform({2, 3, 9, 9}, 12, -100, 100).to(kInt32);
  EXPECT_TRUE(same_on_cuda(
      [](const std::vector<Tensor>& v) { return max_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}); },
      {ints}, {0, 0}, {{0, 0}}));
  Tensor nan = rnd({1, 1, 6, 6}, 13, kFloat32);
  nan = where(gt(nan, 0.8), full({}, NAN), nan);
  EXPECT_TRUE(same_on_cuda([](const std::vector<Tensor>& v) { return max_pool2d(v[0], {2, 2}); },
                           {nan}, tol_for(kFloat32), {tol_for(kFloat32)}));
}

TEST_F(CudaNnOps, AvgPool2dDivisorsAndCeilMode) {
  for (DType dt : {kFloat32, kFloat64, kBFloat16})
    for (const PoolCase& p : kPoolCases) {
      if (p.padding[0] * 2 > p.kernel[0] || p.padding[1] * 2 > p.kernel[1]) continue;
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + std::to_string(p.h) + "x" +
                   std::to_string(p.w) + " ceil=" + std::to_string(p.ceil_mode) +
                   " include_pad=" + std::to_string(p.include_pad));
      EXPECT_TRUE(same_on_cuda(
          [&](const std::vector<Tensor>& v) {
            return avg_pool2d(v[0], p.kernel, p.stride, p.padding, p.ceil_mode, p.include_pad);
          },
          {rnd({p.n, p.c, p.h, p.w}, 14, dt)}, tol_for(dt, 9), {tol_for(dt, 9)}));
    }
}

TEST_F(CudaNnOps, AdaptiveAvgPool2dBins) {
  const std::pair<Shape, Pair> cases[] = {
      {{2, 3, 7, 9}, {3, 4}}, {{1, 2, 5, 5}, {7, 7}}, {{2, 4, 8, 8}, {1, 1}},
      {{1, 1, 6, 10}, {6, 10}}, {{3, 2, 13, 4}, {5, 3}}};
  for (DType dt : {kFloat32, kFloat64, kBFloat16})
    for (const auto& [shape, out] : cases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + to_string(shape));
      EXPECT_TRUE(same_on_cuda(
          [&](const std::vector<Tensor>& v) { return adaptive_avg_pool2d(v[0], out); },
          {rnd(shape, 15, dt)}, tol_for(dt, 64), {tol_for(dt, 64)}));
    }
}

// ---- batch norm ---------------------------------------------------------------------------

TEST_F(CudaNnOps, BatchNormTrainAndEvalWithRunningStats) {
  // (The op layer refuses one value per channel in training, before any kernel runs.)
  const Shape shapes[] = {{4, 3, 5, 5}, {8, 5}, {2, 4, 7}, {2, 3}, {16, 2, 33, 17}};
  for (DType dt : {kFloat32, kFloat64, kBFloat16})
    for (const Shape& shape : shapes)
      for (bool training : {true, false})
        for (bool affine : {true, false}) {
          SCOPED_TRACE(std::string(dtype_name(dt)) + " " + to_string(shape) +
                       (training ? " train" : " eval") + (affine ? " affine" : ""));
          const int64_t C = shape[1];
          const DType st = dt == kFloat64 ? kFloat64 : kFloat32;  // statistics dtype
          Tensor x = rnd(shape, 16, dt, -2, 3);
          Tensor w = affine ? rnd({C}, 17, st, 0.5, 1.5) : Tensor();
          Tensor b = affine ? rnd({C}, 18, st) : Tensor();
          Tensor rm = rnd({C}, 19, st), rv = rnd({C}, 20, st, 0.5, 2);
          Tensor rm_gpu = rm.cuda(), rv_gpu = rv.cuda();
          Tensor rm_cpu = rm.clone(), rv_cpu = rv.clone();
          const Tol t = tol_for(dt, 64);
          bool use_gpu_stats = false;
          auto f = [&](const std::vector<Tensor>& v) {
            const bool gpu = v[0].device().is_cuda();
            use_gpu_stats = gpu;
            return batch_norm(v[0], gpu ? rm_gpu : rm_cpu, gpu ? rv_gpu : rv_cpu, v[1], v[2],
                              training, 0.1, 1e-5);
          };
          EXPECT_TRUE(same_on_cuda(f, {x, w, b}, t, {t, tol_for(st, numel(shape))}));
          EXPECT_TRUE(use_gpu_stats);
          EXPECT_TRUE(close(rm_gpu, rm_cpu, tol_for(st, 64), "running_mean"));
          EXPECT_TRUE(close(rv_gpu, rv_cpu, tol_for(st, 64), "running_var"));
        }
}

// ---- end to end ---------------------------------------------------------------------------

std::shared_ptr<nn::Sequential> tiny_cnn() {
  return std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1), std::make_shared<nn::BatchNorm2d>(8),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2),
      std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(8 * 4 * 4, 10)});
}

TEST_F(CudaNnOps, TinyCnnTrainsTheSameOnBothDevices) {
  auto cpu = tiny_cnn(), gpu = tiny_cnn();
  gpu->load_state_dict(cpu->state_dict());
  gpu->to(kCUDA);
  optim::SGD opt_cpu(cpu->parameters(), {.lr = 0.05, .momentum = 0.9});
  optim::SGD opt_gpu(gpu->parameters(), {.lr = 0.05, .momentum = 0.9});
  Tensor x = rnd({16, 3, 8, 8}, 21, kFloat32, -2, 2);
  Tensor y = test::uniform({16}, 22, 0, 10).to(kInt64);
  Tensor x_gpu = x.cuda(), y_gpu = y.cuda();
  for (int step = 0; step < 5; ++step) {
    Tensor loss_cpu = cross_entropy((*cpu)(x), y);
    opt_cpu.zero_grad();
    loss_cpu.backward();
    opt_cpu.step();
    Tensor loss_gpu = cross_entropy((*gpu)(x_gpu), y_gpu);
    opt_gpu.zero_grad();
    loss_gpu.backward();
    opt_gpu.step();
    EXPECT_NEAR(loss_gpu.cpu().item<float>(), loss_cpu.item<float>(), 1e-4) << "step " << step;
  }
  const StateDict a = gpu->state_dict(), e = cpu->state_dict();
  ASSERT_EQ(a.size(), e.size());
  for (const auto& [name, t] : e) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(a.count(name));
    EXPECT_TRUE(close(a.at(name), t, {1e-4, 1e-4}, name));
  }
}

}  // namespace
