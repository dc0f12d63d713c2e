// Channels-last on CUDA: conv2d runs cuDNN's NHWC kernels on NHWC memory (no layout
// conversion) and batch_norm normalises the [N*H*W, C] matrix; both must agree with the CPU's
// row-major results, forward and backward, in every floating dtype, and keep the layout.
// Skipped without a GPU.
#include "support/cuda_check.h"

using namespace anvil;

namespace {

using test::poison_device_cache;
using test::rnd;
using test::same_on_cuda;
using test::Tol;

constexpr MemoryFormat kCL = MemoryFormat::ChannelsLast;

class CudaChannelsLast : public test::CudaTest {};

// As test_cuda_nn_ops.cpp: sums over `len` terms of values in [-1, 1].
Tol tol_for(DType dt, int64_t len = 1) {
  switch (dt) {
    case kFloat32: return {1e-5, 2e-6 * double(len)};
    case kFloat64: return {1e-12, 1e-13 * double(len)};
    default: return {2e-2, 2e-2 * std::max(1.0, double(len) / 64)};
  }
}

TEST_F(CudaChannelsLast, Conv2dMatchesTheCpuAndStaysChannelsLast) {
  struct Case {
    int64_t n, c, h, w, k, kh;
    int64_t stride, pad, groups;
    bool bias;
  };
  const Case cases[] = {
      {4, 16, 12, 12, 32, 3, 1, 1, 1, false},  // ResNet's 3x3
      {4, 16, 12, 12, 32, 3, 2, 1, 1, false},  // strided
      {4, 16, 12, 12, 32, 1, 2, 0, 1, false},  // the 1x1 shortcut
      {3, 3, 10, 9, 8, 3, 1, 1, 1, true},      // 3 input channels (the stem), with a bias
      {2, 8, 7, 7, 8, 3, 1, 1, 2, true},       // groups
  };
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kFloat16})
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " C=" + std::to_string(c.c) +
                   " K=" + std::to_string(c.k) + " k=" + std::to_string(c.kh) +
                   " stride=" + std::to_string(c.stride));
      const int64_t oh = (c.h + 2 * c.pad - c.kh) / c.stride + 1;
      const int64_t ow = (c.w + 2 * c.pad - c.kh) / c.stride + 1;
      const Tol out_t = tol_for(dt, c.c / c.groups * c.kh * c.kh);
      const Tol gx_t = tol_for(dt, c.k / c.groups * c.kh * c.kh);
      const Tol gw_t = tol_for(dt, c.n * oh * ow);
      bool layout_kept = true;
      EXPECT_TRUE(same_on_cuda(
          [&](const std::vector<Tensor>& v) {
            Tensor out = conv2d(v[0].contiguous(kCL), v[1], v[2], {c.stride, c.stride},
                                {c.pad, c.pad}, {1, 1}, c.groups);
            if (out.device().is_cuda())
              layout_kept = out.is_contiguous(kCL) && (c.k == 1 || !out.is_contiguous());
            return out;
          },
          {rnd({c.n, c.c, c.h, c.w}, 1, dt), rnd({c.k, c.c / c.groups, c.kh, c.kh}, 2, dt),
           c.bias ? rnd({c.k}, 3, dt) : Tensor()},
          out_t, {gx_t, gw_t, gw_t}));
      EXPECT_TRUE(layout_kept);
    }
}

TEST_F(CudaChannelsLast, GradientsKeepTheirLayouts) {
  Tensor x = rnd({4, 16, 8, 8}, 4, kFloat32).cuda().contiguous(kCL).detach().requires_grad_();
  Tensor w = rnd({16, 16, 3, 3}, 5, kFloat32).cuda().requires_grad_();
  Tensor out = relu(conv2d(x, w, Tensor(), {1, 1}, {1, 1}));
  EXPECT_TRUE(out.is_contiguous(kCL) && !out.is_contiguous());
  sum(out).backward();
  EXPECT_TRUE(x.grad().is_contiguous(kCL) && !x.grad().is_contiguous());
  EXPECT_TRUE(w.grad().is_contiguous());  // as the parameter: optimizers walk both as one run
}

TEST_F(CudaChannelsLast, BatchNormMatchesTheCpu) {
  for (DType dt : {kFloat32, kBFloat16, kFloat16})
    for (bool training : {true, false}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + (training ? " training" : " eval"));
      const Shape shape{8, 24, 9, 7};
      const int64_t per_channel = 8 * 9 * 7;
      const DType st = kFloat32;
      Tensor rm_cpu = rnd({24}, 6, st), rv_cpu = rnd({24}, 7, st, 0.5, 2);
      Tensor rm_gpu = rm_cpu.cuda(), rv_gpu = rv_cpu.cuda();
      bool layout_kept = true;
      const Tol t = dt == kFloat32 ? Tol{1e-5, 1e-5} : tol_for(dt);
      EXPECT_TRUE(same_on_cuda(
          [&](const std::vector<Tensor>& v) {
            const bool gpu = v[0].device().is_cuda();
            Tensor out = batch_norm(v[0].contiguous(kCL), gpu ? rm_gpu : rm_cpu,
                                    gpu ? rv_gpu : rv_cpu, v[1], v[2], training, 0.1, 1e-5);
            if (gpu) layout_kept = out.is_contiguous(kCL) && !out.is_contiguous();
            return out;
          },
          {rnd(shape, 8, dt, -2, 3), rnd({24}, 9, st), rnd({24}, 10, st)}, t,
          {t, tol_for(kFloat32, per_channel), tol_for(kFloat32, per_channel)}));
      EXPECT_TRUE(layout_kept);
      EXPECT_TRUE(test::close(rm_gpu, rm_cpu, {1e-5, 1e-6}, "running_mean"));
      EXPECT_TRUE(test::close(rv_gpu, rv_cpu, {1e-5, 1e-6}, "running_var"));
    }
}

TEST_F(CudaChannelsLast, BatchNormReluFusedMatchesTheExactComposition) {
  // cuDNN's fused BN + ReLU (+ residual) for 16-bit channels-last training input against the
  // composed relu(batch_norm(x) + residual) in float64 on the CPU: output, every gradient,
  // running statistics. The reference is exact rather than 16-bit because the fused kernel
  // rounds once where the composed 16-bit ops round after each op: a pre-activation within a
  // rounding of 0 would take the other ReLU branch there. float32 is declined by the fused
  // kernels and composed on the GPU too.
  auto to64 = [](const Tensor& t) { return t.defined() ? t.cpu().to(kFloat64) : Tensor(); };
  for (DType dt : {kBFloat16, kFloat16, kFloat32})
    for (bool with_residual : {false, true}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + (with_residual ? " with residual" : ""));
      const Shape shape{8, 32, 6, 5};
      const int64_t per_channel = 8 * 6 * 5;
      const Tensor x = rnd(shape, 32, dt, -2, 3), r = rnd(shape, 35, dt);
      const Tensor w = rnd({32}, 33, kFloat32, 0.5, 1.5), b = rnd({32}, 34, kFloat32);
      const Tensor g = rnd(shape, 36, dt);
      const Tensor rm = rnd({32}, 30, kFloat32), rv = rnd({32}, 31, kFloat32, 0.5, 2);
      struct Run {
        Tensor out, dx, dw, db, dr, rm, rv;
        std::string node;
      };
      auto run = [&](Device d, DType data, DType stats) {
        Run o;
        Tensor xl = x.to(d, data).contiguous(kCL).detach().requires_grad_();
        Tensor rl = r.to(d, data).contiguous(kCL).detach().requires_grad_();
        Tensor wl = w.to(d, stats).detach().requires_grad_();
        Tensor bl = b.to(d, stats).detach().requires_grad_();
        o.rm = rm.to(d, stats).clone();
        o.rv = rv.to(d, stats).clone();
        o.out = batch_norm_relu(xl, o.rm, o.rv, wl, bl, true, 0.1, 1e-5,
                                with_residual ? rl : Tensor());
        o.node = o.out.grad_fn()->name();
        o.out.backward(g.to(d, data).contiguous(kCL));
        o.dx = xl.grad();
        o.dw = wl.grad();
        o.db = bl.grad();
        if (with_residual) o.dr = rl.grad();
        return o;
      };
      const Run want = run(kCPU, kFloat64, kFloat64);
      poison_device_cache();
      const Run got = run(kCUDA, dt, kFloat32);
      EXPECT_EQ(got.node, dt == kFloat32 ? "ReluBackward" : "BatchNormReluBackward");
      EXPECT_TRUE(got.out.is_contiguous(kCL) && !got.out.is_contiguous());
      const Tol t = dt == kFloat32 ? Tol{1e-5, 1e-5} : tol_for(dt);
      const Tol param = tol_for(dt == kFloat32 ? kFloat32 : dt, per_channel);
      EXPECT_TRUE(test::all_close(to64(got.out), want.out, t.rtol, t.atol)) << "output";
      EXPECT_TRUE(test::all_close(to64(got.dx), want.dx, t.rtol, t.atol)) << "grad of x";
      EXPECT_TRUE(test::all_close(to64(got.dw), want.dw, param.rtol, param.atol)) << "grad of w";
      EXPECT_TRUE(test::all_close(to64(got.db), want.db, param.rtol, param.atol)) << "grad of b";
      if (with_residual) {
        EXPECT_TRUE(test::all_close(to64(got.dr), want.dr, t.rtol, t.atol)) << "grad of residual";
      }
      EXPECT_TRUE(test::all_close(to64(got.rm), want.rm, 1e-5, 1e-6)) << "running_mean";
      EXPECT_TRUE(test::all_close(to64(got.rv), want.rv, 1e-5, 1e-6)) << "running_var";
    }
}

TEST_F(CudaChannelsLast, ResNetBlockTrainsAsItDoesRowMajor) {
  // One ResNet basic block (conv-BN-ReLU-conv-BN + shortcut, ReLU) and an SGD step, fed
  // channels-last and row-major on the GPU: the same losses and parameters to rounding. Under
  // bfloat16 autocast the channels-last run takes cuDNN's fused BN + ReLU (+ residual) kernels.
  auto run = [](MemoryFormat format, std::optional<DType> cast) {
    manual_seed(0);
    auto block = std::make_shared<nn::BasicBlock>(16, 32, 2);
    block->to(kCUDA);
    optim::SGD opt(block->parameters(), optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
    Tensor x = rnd({8, 16, 12, 12}, 11, kFloat32).cuda().contiguous(format);
    std::vector<double> losses;
    for (int i = 0; i < 3; ++i) {
      opt.zero_grad();
      Tensor loss;
      {
        std::optional<amp::autocast> guard;
        if (cast) guard.emplace(DeviceKind::CUDA, *cast);
        Tensor y = (*block)(x).to(kFloat32);
        loss = mean(mul(y, y));
      }
      loss.backward();
      opt.step();
      losses.push_back(loss.item<double>());
    }
    std::vector<Tensor> params;
    for (const Tensor& p : block->parameters()) params.push_back(p.detach().cpu());
    return std::make_pair(losses, params);
  };
  struct Case {
    std::optional<DType> cast;
    double loss_rtol, rtol, atol;
  };
  for (const Case& c : {Case{std::nullopt, 1e-5, 1e-4, 1e-5}, Case{kBFloat16, 2e-2, 2e-2, 2e-3}}) {
    SCOPED_TRACE(c.cast ? "bfloat16 autocast" : "float32");
    auto [cl_losses, cl_params] = run(kCL, c.cast);
    auto [rm_losses, rm_params] = run(MemoryFormat::Contiguous, c.cast);
    for (size_t i = 0; i < cl_losses.size(); ++i)
      EXPECT_NEAR(cl_losses[i], rm_losses[i], c.loss_rtol * std::abs(rm_losses[i]));
    for (size_t i = 0; i < cl_params.size(); ++i)
      EXPECT_TRUE(test::all_close(cl_params[i], rm_params[i], c.rtol, c.atol))
          << "parameter " << i;
  }
}

}  // namespace
