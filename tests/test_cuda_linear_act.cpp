// linear_act on CUDA (cuBLASLt epilogues BIAS / RELU_BIAS / GELU_AUX_BIAS, the BGRADB weight
// gradient, and their fallbacks) against the CPU reference: every activation and floating
// dtype, odd sizes, 1-sized dims, misaligned operands, outputs and gradients from poisoned
// memory, TF32, autocast, a Sequential MLP; and that the epilogues really run. Skipped without
// a GPU.
#include <cmath>
#include <iostream>
#include <string>

#include "anvil/amp/autocast.h"
#include "anvil/nn/nn.h"
#include "anvil/ops/linear_act.h"
#include "support/cuda_check.h"

using namespace anvil;

// Backend switches and counters (backend/cuda/tf32.h, backend/cuda/linear.cpp); weak, so that
// this file also links into builds without CUDA, where the tests skip.
namespace anvil::cuda {
[[gnu::weak]] void set_allow_tf32(bool on);
[[gnu::weak]] int64_t linear_epilogue_calls(bool fused, bool bias_grad);
}  // namespace anvil::cuda

namespace {

using test::rnd;
using test::same_on_cuda;
using test::Tol;

class CudaLinearAct : public test::CudaTest {};

const Activation kActs[] = {Activation::None, Activation::Relu, Activation::GeluTanh};
const DType kFloats[] = {kFloat32, kFloat64, kBFloat16, kFloat16};

std::string act_name(Activation a) {
  return a == Activation::None ? "none" : a == Activation::Relu ? "relu" : "gelu_tanh";
}

// Values in {-1, -0.5, 0, 0.5, 1}: products are multiples of 0.25, sums of them are exact in
// float32 (and TF32 inputs), and in 16-bit below 64 in magnitude (all but vanishingly rare
// elements here), so the CPU and the GPU see the same pre-activations and relu masks. Random
// values would flip relu's mask wherever the two accumulation orders straddle 0, and the
// gradients would differ there by whole terms.
Tensor grid(const Shape& shape, uint64_t seed, DType dt) {
  std::vector<double> v = test::uniform(shape, seed, -1.2, 1.2).to_vector<double>();
  for (double& e : v) e = std::round(e * 2) / 2;
  return tensor(v, shape).to(dt);
}

// Tolerances for sums over `len` terms of values in [-1, 1]; float32 is exact IEEE (TF32 off).
// 16-bit: 1e-2 relative; the absolute part covers gelu near its tail, where the epilogue's tanh
// approximation is amplified by 1 + tanh(u) ~ 0.
Tol tol_for(DType dt, int64_t len) {
  switch (dt) {
    case kFloat32: return {1e-5, 2e-6 * double(len)};
    case kFloat64: return {1e-12, 1e-13 * double(len)};
    default: return {1e-2, 5e-3};
  }
}

struct Case {
  Shape x;
  int64_t out;
};

// Odd sizes; an MLP layer (batch 128); a 3-D input; and 1-sized dims (cuBLASLt's epilogues
// refuse those: the fallback runs).
const Case kCases[] = {{{127, 33}, 65}, {{128, 784}, 128}, {{4, 7, 33}, 17}, {{5, 3}, 2},
                       {{1, 33}, 65},   {{127, 1}, 65},    {{16, 32}, 1},    {{33}, 9}};

std::string case_name(const Case& c, DType dt, Activation a, bool bias) {
  return std::string(dtype_name(dt)) + " " + act_name(a) + " x=" + to_string(c.x) +
         " out=" + std::to_string(c.out) + (bias ? " bias" : " no bias");
}

test::Fn layer(Activation a, bool bias) {
  return [a, bias](const std::vector<Tensor>& v) {
    return linear_act(v[0], v[1], bias ? v[2] : Tensor(), a);
  };
}

TEST_F(CudaLinearAct, OutputsAndGradientsEveryActivationAndDtype) {
  for (DType dt : kFloats)
    for (const Case& c : kCases)
      for (Activation a : kActs)
        for (bool bias : {true, false}) {
          SCOPED_TRACE(case_name(c, dt, a, bias));
          const int64_t in = c.x.back();
          const int64_t len = std::max({in, c.out, numel(c.x) / in});
          EXPECT_TRUE(same_on_cuda(layer(a, bias),
                                   {grid(c.x, 1, dt), grid({c.out, in}, 2, dt),
                                    bias ? grid({c.out}, 3, dt) : Tensor()},
                                   tol_for(dt, len), tol_for(dt, len)));
        }
}

// Continuous values: float32 to 1e-5 (TF32 off); 16-bit within their rounding (the CPU rounds
// the product before adding the bias, the epilogue after).
TEST_F(CudaLinearAct, OutputsOfRandomValues) {
  for (DType dt : kFloats)
    for (Activation a : kActs) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + act_name(a));
      Tol t = tol_for(dt, 65);
      if (dt == kBFloat16 || dt == kFloat16) t = {1e-2, 4e-2};
      std::vector<Tensor> v{rnd({127, 33}, 4, dt, -2, 2), rnd({65, 33}, 5, dt), rnd({65}, 6, dt)};
      Tensor cpu = linear_act(v[0], v[1], v[2], a);
      test::poison_device_cache();
      Tensor gpu = linear_act(v[0].cuda(), v[1].cuda(), v[2].cuda(), a);
      EXPECT_TRUE(test::close(gpu, cpu, t));
    }
}

// Operands at odd element offsets and strided views: the epilogue may have no algorithm for
// such alignments (then the fallback runs); either way the values are right.
TEST_F(CudaLinearAct, MisalignedAndStridedOperands) {
  for (DType dt : {kFloat32, kBFloat16})
    for (Activation a : kActs) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + act_name(a));
      const Tol t = tol_for(dt, 65);
      EXPECT_TRUE(same_on_cuda(
          [a](const std::vector<Tensor>& v) {
            return linear_act(v[0].slice(0, 1, 128), v[1].slice(0, 1, 66), v[2].slice(0, 1, 66),
                              a);
          },
          {grid({128, 33}, 7, dt), grid({66, 33}, 8, dt), grid({66}, 9, dt)}, t, t));
      EXPECT_TRUE(same_on_cuda(
          [a](const std::vector<Tensor>& v) { return linear_act(v[0].t(), v[1], v[2], a); },
          {grid({33, 64}, 10, dt), grid({16, 33}, 11, dt), grid({16}, 12, dt)}, t, t));
    }
}

// TF32 rounds the gradient products' random g; the grid forward stays exact.
TEST_F(CudaLinearAct, Tf32) {
  if (!&anvil::cuda::set_allow_tf32) GTEST_SKIP() << "no CUDA backend in this build";
  anvil::cuda::set_allow_tf32(true);
  const Tol t{1e-3, 2e-3 * 23};  // as test_cuda_linalg: ~2^-11 relative per product
  bool ok = true;
  for (Activation a : kActs)
    ok = ok && same_on_cuda(layer(a, true),
                            {grid({256, 512}, 13, kFloat32), grid({129, 512}, 14, kFloat32),
                             grid({129}, 15, kFloat32)},
                            t, t);
  anvil::cuda::set_allow_tf32(false);
  EXPECT_TRUE(ok);
}

// The point of the op: the epilogues run (and are not silently replaced by the fallback) where
// cuBLASLt is documented to support them: BIAS / RELU_BIAS for every float dtype PyTorch sends
// through them, GELU_AUX_BIAS and BGRADB for 16-bit. Other cases are reported, not required.
TEST_F(CudaLinearAct, EpiloguesRun) {
  if (!&anvil::cuda::linear_epilogue_calls) GTEST_SKIP() << "no CUDA backend in this build";
  auto calls = [](bool fused, bool bgrad) {
    return anvil::cuda::linear_epilogue_calls(fused, bgrad);
  };
  for (DType dt : kFloats)
    for (Activation a : kActs) {
      const std::string name = std::string(dtype_name(dt)) + " " + act_name(a);
      SCOPED_TRACE(name);
      const bool half = dt == kBFloat16 || dt == kFloat16;
      Tensor x = grid({128, 64}, 16, dt).cuda().requires_grad_();
      Tensor w = grid({32, 64}, 17, dt).cuda().requires_grad_();
      Tensor b = grid({32}, 18, dt).cuda().requires_grad_();
      const int64_t f0 = calls(true, false), u0 = calls(false, false);
      const int64_t bf0 = calls(true, true), bu0 = calls(false, true);
      Tensor y = linear_act(x, w, b, a);
      const bool fused_fwd = calls(true, false) == f0 + 1 && calls(false, false) == u0;
      sum(y.to(kFloat32)).backward();
      const bool fused_bgrad = calls(true, true) == bf0 + 1 && calls(false, true) == bu0;
      std::cout << "[ linear_act ] " << name << ": forward epilogue "
                << (fused_fwd ? "fused" : "fallback") << ", bias gradient "
                << (fused_bgrad ? "BGRADB" : "fallback") << "\n";
      // float32/float64 gelu is BIAS then the gelu kernel by design (not counted as fused).
      const bool gelu_by_design = a == Activation::GeluTanh && !half;
      if (dt != kFloat64 && !gelu_by_design) {
        EXPECT_TRUE(fused_fwd);
      }
      if (half) {
        EXPECT_TRUE(fused_bgrad);
      }
    }
}

TEST_F(CudaLinearAct, AutocastCastsAsLinearDoes) {
  Tensor x = rnd({64, 48}, 19, kFloat32).cuda();
  Tensor w = rnd({40, 48}, 20, kFloat32).cuda().requires_grad_();
  Tensor b = rnd({40}, 21, kFloat32).cuda().requires_grad_();
  for (Activation a : kActs) {
    SCOPED_TRACE(act_name(a));
    Tensor y;
    {
      amp::autocast ac(DeviceKind::CUDA, kBFloat16);
      y = linear_act(x, w, b, a);
    }
    EXPECT_EQ(y.dtype(), kBFloat16);
    // The same casts by hand (differentiable, so that the same epilogue runs): the same bits.
    Tensor expect = linear_act(x.to(kBFloat16), w.to(kBFloat16), b.to(kBFloat16), a);
    EXPECT_TRUE(equal(y, expect));
  }
}

// An MLP like the benchmark's (batch 128) through Sequential's fusion: the same outputs and
// parameter gradients as on the CPU. Grid parameters and input keep the relu masks equal.
TEST_F(CudaLinearAct, SequentialMlp) {
  auto build = [] {
    auto net = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
        std::make_shared<nn::Linear>(784, 256), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Linear>(256, 128), std::make_shared<nn::GELU>("tanh"),
        std::make_shared<nn::Linear>(128, 10)});
    NoGradGuard no_grad;
    uint64_t seed = 30;
    for (Tensor& p : net->parameters()) p.copy_(grid(p.shape(), seed++, kFloat32));
    return net;
  };
  auto cpu = build(), gpu = build();
  gpu->to(Device(DeviceKind::CUDA, 0));
  Tensor x = grid({128, 784}, 22, kFloat32);
  Tensor g = rnd({128, 10}, 23, kFloat32);
  Tensor yc = cpu->forward(x);
  yc.backward(g);
  test::poison_device_cache();
  Tensor yg = gpu->forward(x.cuda());
  yg.backward(g.cuda());
  EXPECT_TRUE(test::close(yg, yc, tol_for(kFloat32, 784), "output"));
  auto pc = cpu->named_parameters(), pg = gpu->named_parameters();
  ASSERT_EQ(pc.size(), pg.size());
  for (size_t i = 0; i < pc.size(); ++i)
    EXPECT_TRUE(test::close(pg[i].second.grad(), pc[i].second.grad(), tol_for(kFloat32, 784),
                            pc[i].first + " grad"));
}

}  // namespace
