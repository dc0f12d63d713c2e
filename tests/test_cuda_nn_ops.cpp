// CUDA convolution (cuDNN) with our bias kernels, pooling, and batch norm (cuDNN and our
// kernels) against the CPU reference, forward and backward, a tiny CNN trained for a few SGD
// steps on both devices from the same weights, and training steps captured into CUDA graphs
// and replayed. Skipped without a GPU.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <functional>

#include "support/cuda_check.h"

using namespace anvil;

namespace {

using test::close;
using test::poison_device_cache;
using test::rnd;
using test::same_on_cuda;
using test::Tol;

class CudaNnOps : public test::CudaTest {};

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

TEST_F(CudaNnOps, Conv2dBiasAndItsGradientOverSeveralBlocksPerChannel) {
  // The bias and its gradient are our per-channel kernels: an odd element count (the vector
  // tail) with each channel's 17 * 23 * 23 values split over blocks mid-row, and 1x1 outputs
  // (S == 1: the column kernel) with 40 channels (a partial tile of 32) over 600 rows.
  struct Case {
    Shape x, w;
    Pair padding;
  };
  const Case cases[] = {{{17, 3, 23, 23}, {5, 3, 3, 3}, {1, 1}},
                        {{600, 16, 1, 1}, {40, 16, 1, 1}, {0, 0}}};
  for (DType dt : {kFloat32, kBFloat16, kFloat16})
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + to_string(c.x));
      const int64_t fan_in = c.w[1] * c.w[2] * c.w[3];
      const int64_t per_channel = c.x[0] * c.x[2] * c.x[3];  // output positions per channel
      // The bias gradient in 16-bit is a rounding of a float sum: a unit in the last place.
      const Tol gb = dt == kFloat32    ? tol_for(dt, per_channel)
                     : dt == kFloat16 ? Tol{1e-3, 1e-3}
                                      : Tol{1e-2, 1e-2};
      EXPECT_TRUE(same_on_cuda(
          [&](const std::vector<Tensor>& v) {
            return conv2d(v[0], v[1], v[2], {1, 1}, c.padding);
          },
          {rnd(c.x, 82, dt), rnd(c.w, 83, dt), rnd({c.w[0]}, 84, dt)}, tol_for(dt, fan_in),
          {tol_for(dt, c.w[0] * c.w[2] * c.w[3]), tol_for(dt, per_channel), gb}));
    }
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

TEST_F(CudaNnOps, Conv2dReluIsReluOfConv2dOnTheGpu) {
  // The ReLU rides in the bias pass (our channel kernel). On the GPU it must give exactly what
  // relu(conv2d(...)) gives there, output and gradients, in every floating dtype, row-major
  // and channels-last, with and without bias; and in float32 what the CPU gives. (In 16-bit
  // the GPU rounds cuDNN's product before adding the bias and the CPU does not, so an element
  // within a rounding of 0 may take the other ReLU branch on the other device.)
  // Deterministic algorithms, so that the two GPU runs may be compared bit for bit.
  struct Deterministic {
    bool was = are_deterministic_algorithms_enabled();
    Deterministic() { use_deterministic_algorithms(true); }
    ~Deterministic() { use_deterministic_algorithms(was); }
  } deterministic;
  for (DType dt : {kFloat32, kBFloat16, kFloat16})
    for (bool with_bias : {true, false})
      for (MemoryFormat format : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + (with_bias ? " bias" : "") +
                     (format == MemoryFormat::ChannelsLast ? " channels-last" : ""));
        const Tensor x = rnd({6, 8, 12, 12}, 90, dt), w = rnd({16, 8, 3, 3}, 91, dt);
        const Tensor b = with_bias ? rnd({16}, 92, dt) : Tensor();
        const Tensor g = rnd({6, 16, 12, 12}, 93, dt);
        auto run = [&](bool fused) {
          Tensor xl = x.cuda().contiguous(format).detach().requires_grad_();
          Tensor wl = w.cuda().requires_grad_();
          Tensor bl = with_bias ? b.cuda().requires_grad_() : Tensor();
          poison_device_cache();
          Tensor out = fused ? conv2d_relu(xl, wl, bl, {1, 1}, {1, 1})
                             : relu(conv2d(xl, wl, bl, {1, 1}, {1, 1}));
          out.backward(g.cuda());
          return std::vector<Tensor>{out.cpu(), xl.grad().cpu(), wl.grad().cpu(),
                                     with_bias ? bl.grad().cpu() : Tensor()};
        };
        const auto fused = run(true), composed = run(false);
        const char* what[] = {"output", "grad of x", "grad of w", "grad of b"};
        for (size_t i = 0; i < fused.size(); ++i) {
          if (fused[i].defined()) {
            EXPECT_TRUE(test::all_close(fused[i], composed[i], 0, 0)) << what[i];
          }
        }
        if (dt != kFloat32) continue;
        EXPECT_TRUE(same_on_cuda(
            [&](const std::vector<Tensor>& v) {
              return conv2d_relu(v[0].contiguous(format), v[1], v[2], {1, 1}, {1, 1});
            },
            {x, w, b}, tol_for(dt, 8 * 9),
            {tol_for(dt, 16 * 9), tol_for(dt, 6 * 144), tol_for(dt, 6 * 144)}));
      }
}

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

TEST_F(CudaNnOps, MaxPool2dBackwardIsExactAtLargerSizes) {
  // The gather visits a position's windows in the CPU's order, so float32 and float64
  // gradients are equal to the last bit, overlapping windows and ties included.
  const PoolCase cases[] = {
      {16, 64, 24, 24, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false, true},
      {3, 5, 31, 29, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true, true},
      {2, 4, 33, 35, {3, 2}, {1, 2}, {1, 1}, {2, 3}, false, true},
  };
  for (DType dt : {kFloat32, kFloat64})
    for (const PoolCase& p : cases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + std::to_string(p.h) + "x" +
                   std::to_string(p.w) + " k=" + std::to_string(p.kernel[0]));
      auto f = [&](const std::vector<Tensor>& v) {
        return max_pool2d(v[0], p.kernel, p.stride, p.padding, p.dilation, p.ceil_mode);
      };
      const Shape shape = {p.n, p.c, p.h, p.w};
      EXPECT_TRUE(same_on_cuda(f, {rnd(shape, 85, dt)}, {0, 0}, {{0, 0}}));
      Tensor ties = rnd(shape, 86, kFloat64, 0, 3).to(kInt64).to(dt);
      EXPECT_TRUE(same_on_cuda(f, {ties}, {0, 0}, {{0, 0}}));
    }
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

// Batch norm tolerances against the CPU. Values (y, dx) are O(1): 1e-5 relative for float32,
// with an absolute allowance of the same size for values near zero (cuDNN computes the
// statistics in float); the 16-bit dtypes are a rounding of the float result (bf16 1e-2,
// fp16 1e-3). Parameter gradients are float32 sums over M = N * S terms (tol_for's bound).
Tol bn_value_tol(DType dt) {
  switch (dt) {
    case kFloat64: return {1e-12, 1e-12};
    case kFloat16: return {1e-3, 1e-3};
    case kBFloat16: return {1e-2, 1e-2};
    default: return {1e-5, 1e-5};
  }
}
Tol bn_sum_tol(DType dt, int64_t count) {
  return tol_for(dt == kFloat64 ? kFloat64 : kFloat32, count);
}

// With ANVIL_TEST_PRINT_ERRORS set, prints the largest differences from the CPU, so that the
// tolerances can be set from what the GPU machine measures.
void print_error(const std::string& what, const Tensor& gpu, const Tensor& cpu) {
  if (!std::getenv("ANVIL_TEST_PRINT_ERRORS")) return;
  Tensor a = gpu.cpu().to(kFloat64), e = cpu.to(kFloat64);
  Tensor diff = abs(sub(a, e));
  const double max_abs = max(diff).item<double>();
  const double max_rel = max(div(diff, add(abs(e), 1e-3))).item<double>();
  std::printf("  %-40s max |diff| %.3g, max |diff| / (|cpu| + 1e-3) %.3g\n", what.c_str(),
              max_abs, max_rel);
}

struct BatchNormRun {
  Tensor out, dx, dw, db, running_mean, running_var;
};

// batch_norm forward and backward (of sum(out * g)) on `device`, from the same CPU values.
BatchNormRun run_batch_norm(Device device, const Tensor& x, const Tensor& w, const Tensor& b,
                            const Tensor& rm, const Tensor& rv, const Tensor& g, bool training) {
  auto leaf = [&](const Tensor& t) {
    return t.defined() ? t.to(device).detach().requires_grad_() : Tensor();
  };
  Tensor xd = leaf(x), wd = leaf(w), bd = leaf(b);
  BatchNormRun r;
  r.running_mean = rm.to(device).clone();
  r.running_var = rv.to(device).clone();
  r.out = batch_norm(xd, r.running_mean, r.running_var, wd, bd, training, 0.1, 1e-5);
  sum(mul(r.out, g.to(device))).backward();
  r.dx = xd.grad();
  if (wd.defined()) r.dw = wd.grad();
  if (bd.defined()) r.db = bd.grad();
  return r;
}

// Shapes for both layouts cuDNN is given (S > 1 as NCHW, S == 1 as NHWC, including a C that
// is not a multiple of 8), a shape whose channels our kernels split over several blocks
// (float64 runs our kernels), and two that only our kernels take, for every dtype: a batch
// past cuDNN's limit (S > 1) and a prime number of rows past it (S == 1, which cannot be
// refactored into NHWC dims within the limit).
const Shape kBatchNormShapes[] = {{8, 16, 7, 5},  {30, 8, 33, 17}, {4096, 64},
                                  {1000, 3},      {65537, 2, 2},   {65537, 3}};

TEST_F(CudaNnOps, BatchNormMatchesCpuForEveryLayoutAndDtype) {
  for (DType dt : {kFloat32, kBFloat16, kFloat16, kFloat64})
    for (const Shape& shape : kBatchNormShapes)
      for (bool training : {true, false})
        for (bool affine : {true, false}) {
          if (!affine && numel(shape) > 100000) continue;  // the big shapes once, affine
          const std::string name = std::string(dtype_name(dt)) + " " + to_string(shape) +
                                   (training ? " train" : " eval") + (affine ? " affine" : "");
          SCOPED_TRACE(name);
          const int64_t C = shape[1], count = numel(shape) / C;
          const DType st = dt == kFloat64 ? kFloat64 : kFloat32;
          const Tensor x = rnd(shape, 61, dt, -2, 3);
          const Tensor w = affine ? rnd({C}, 62, st, 0.5, 1.5) : Tensor();
          const Tensor b = affine ? rnd({C}, 63, st) : Tensor();
          const Tensor rm = rnd({C}, 64, st), rv = rnd({C}, 65, st, 0.5, 2);
          const Tensor g = rnd(shape, 66, dt);
          const BatchNormRun cpu = run_batch_norm(kCPU, x, w, b, rm, rv, g, training);
          poison_device_cache();
          const BatchNormRun gpu = run_batch_norm(kCUDA, x, w, b, rm, rv, g, training);
          const Tol vt = bn_value_tol(dt), sum_t = bn_sum_tol(dt, count);
          const Tol stat_t = dt == kFloat64 ? Tol{1e-12, 1e-12} : Tol{1e-5, 1e-6};
          EXPECT_TRUE(close(gpu.out, cpu.out, vt, "output"));
          EXPECT_TRUE(close(gpu.dx, cpu.dx, vt, "grad_input"));
          if (affine) {
            EXPECT_TRUE(close(gpu.dw, cpu.dw, sum_t, "grad_weight"));
            EXPECT_TRUE(close(gpu.db, cpu.db, sum_t, "grad_bias"));
          }
          EXPECT_TRUE(close(gpu.running_mean, cpu.running_mean, stat_t, "running_mean"));
          EXPECT_TRUE(close(gpu.running_var, cpu.running_var, stat_t, "running_var"));
          if (!training) {  // eval leaves the running statistics alone
            EXPECT_TRUE(equal(gpu.running_mean.cpu(), rm));
            EXPECT_TRUE(equal(gpu.running_var.cpu(), rv));
          }
          if (std::getenv("ANVIL_TEST_PRINT_ERRORS")) std::printf("%s\n", name.c_str());
          print_error("output", gpu.out, cpu.out);
          print_error("grad_input", gpu.dx, cpu.dx);
          if (affine) print_error("grad_weight", gpu.dw, cpu.dw);
          print_error("running_var", gpu.running_var, cpu.running_var);
        }
}

TEST_F(CudaNnOps, BatchNormOfAnUnalignedViewAndWithoutInputGrad) {
  // A contiguous view that starts 15 values into its storage: no 16-byte vector access.
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    const DType st = dt == kFloat64 ? kFloat64 : kFloat32;
    const Tensor rm = rnd({3}, 67, st), rv = rnd({3}, 68, st, 0.5, 2);
    Tensor rm_gpu = rm.cuda(), rv_gpu = rv.cuda(), rm_cpu = rm.clone(), rv_cpu = rv.clone();
    for (bool training : {true, false}) {
      auto f = [&](const std::vector<Tensor>& v) {
        const bool gpu = v[0].device().is_cuda();
        return batch_norm(v[0].narrow(0, 1, 8), gpu ? rm_gpu : rm_cpu, gpu ? rv_gpu : rv_cpu,
                          v[1], v[2], training, 0.1, 1e-5);
      };
      EXPECT_TRUE(same_on_cuda(f, {rnd({9, 3, 5}, 69, dt), rnd({3}, 70, st), rnd({3}, 71, st)},
                               bn_value_tol(dt), {bn_value_tol(dt), bn_sum_tol(dt, 40)}));
    }
  }
  // Only the parameters want gradients: cuDNN's backward writes grad_input, so our kernels run.
  for (const Shape& shape : {Shape{8, 16, 7, 5}, Shape{4096, 64}}) {
    SCOPED_TRACE(to_string(shape));
    const Tensor x = rnd(shape, 72, kFloat32), g = rnd(shape, 73, kFloat32);
    const Tensor w = rnd({shape[1]}, 74, kFloat32, 0.5, 1.5), b = rnd({shape[1]}, 75, kFloat32);
    auto parameter_grads = [&](Device d) {
      Tensor wd = w.to(d).detach().requires_grad_(), bd = b.to(d).detach().requires_grad_();
      Tensor y = batch_norm(x.to(d), Tensor(), Tensor(), wd, bd, true, 0.1, 1e-5);
      sum(mul(y, g.to(d))).backward();
      return std::pair{wd.grad(), bd.grad()};
    };
    const auto [dw_cpu, db_cpu] = parameter_grads(kCPU);
    poison_device_cache();
    const auto [dw_gpu, db_gpu] = parameter_grads(kCUDA);
    const Tol t = bn_sum_tol(kFloat32, numel(shape) / shape[1]);
    EXPECT_TRUE(close(dw_gpu, dw_cpu, t, "grad_weight"));
    EXPECT_TRUE(close(db_gpu, db_cpu, t, "grad_bias"));
  }
}

// Deterministic mode for one scope.
struct DeterministicScope {
  DeterministicScope() { use_deterministic_algorithms(true); }
  ~DeterministicScope() { use_deterministic_algorithms(false); }
  DeterministicScope(const DeterministicScope&) = delete;
  DeterministicScope& operator=(const DeterministicScope&) = delete;
};

TEST_F(CudaNnOps, BatchNormIsBitIdenticalRunAfterRunInDeterministicMode) {
  const DeterministicScope deterministic;
  for (DType dt : {kFloat32, kBFloat16, kFloat16})
    for (const Shape& shape : {Shape{8, 16, 7, 5}, Shape{4096, 64}, Shape{65537, 3}}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + to_string(shape));
      const int64_t C = shape[1];
      const Tensor x = rnd(shape, 76, dt, -2, 3), g = rnd(shape, 77, dt);
      const Tensor w = rnd({C}, 78, kFloat32, 0.5, 1.5), b = rnd({C}, 79, kFloat32);
      const Tensor rm = rnd({C}, 80, kFloat32), rv = rnd({C}, 81, kFloat32, 0.5, 2);
      const BatchNormRun first = run_batch_norm(kCUDA, x, w, b, rm, rv, g, true);
      for (int run = 0; run < 2; ++run) {
        poison_device_cache();
        const BatchNormRun again = run_batch_norm(kCUDA, x, w, b, rm, rv, g, true);
        EXPECT_TRUE(equal(again.out.cpu(), first.out.cpu())) << "run " << run;
        EXPECT_TRUE(equal(again.dx.cpu(), first.dx.cpu())) << "run " << run;
        EXPECT_TRUE(equal(again.dw.cpu(), first.dw.cpu())) << "run " << run;
        EXPECT_TRUE(equal(again.db.cpu(), first.db.cpu())) << "run " << run;
        EXPECT_TRUE(equal(again.running_var.cpu(), first.running_var.cpu())) << "run " << run;
      }
      const BatchNormRun cpu = run_batch_norm(kCPU, x, w, b, rm, rv, g, true);
      EXPECT_TRUE(close(first.out, cpu.out, bn_value_tol(dt), "output"));
      EXPECT_TRUE(close(first.dx, cpu.dx, bn_value_tol(dt), "grad_input"));
      EXPECT_TRUE(close(first.dw, cpu.dw, bn_sum_tol(dt, numel(shape) / C), "grad_weight"));
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

// ---- a training step captured into a CUDA graph ---------------------------------------------

// The CUDA runtime's stream-capture calls, looked up in the process at run time: the tests link
// only anvil (which brings the runtime in) and must build without the CUDA headers.
struct CaptureApi {
  using Stream = void*;
  static inline Stream const kPerThreadStream = reinterpret_cast<Stream>(0x2);  // per thread
  static constexpr int kCaptureModeGlobal = 0;  // cudaStreamCaptureModeGlobal

  int (*begin)(Stream, int mode) = nullptr;
  int (*end)(Stream, void** graph) = nullptr;
  int (*instantiate)(void** exec, void* graph, unsigned long long flags) = nullptr;
  int (*launch)(void* exec, Stream) = nullptr;
  int (*destroy_exec)(void* exec) = nullptr;
  int (*destroy_graph)(void* graph) = nullptr;
  const char* (*error_name)(int) = nullptr;

  template <class F> static void find(F& f, const char* name) {
    f = reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
  }
  CaptureApi() {
    find(begin, "cudaStreamBeginCapture");
    find(end, "cudaStreamEndCapture");
    find(instantiate, "cudaGraphInstantiateWithFlags");
    find(launch, "cudaGraphLaunch");
    find(destroy_exec, "cudaGraphExecDestroy");
    find(destroy_graph, "cudaGraphDestroy");
    find(error_name, "cudaGetErrorName");
  }
  bool found() const {
    return begin && end && instantiate && launch && destroy_exec && destroy_graph && error_name;
  }
  std::string name(int err) const { return err == 0 ? "cudaSuccess" : error_name(err); }
};

using Params = std::vector<Tensor>;
using LossFn = std::function<Tensor(const Params&)>;

// One SGD step: gradients reset to none (as Optimizer::zero_grad), forward, backward, and the
// parameters moved in place (their addresses, which a graph bakes in, stay). Returns the loss.
Tensor sgd_step(const LossFn& loss_of, const Params& params, double lr) {
  for (Tensor p : params) p.set_grad(Tensor());
  Tensor loss = loss_of(params);
  loss.backward();
  NoGradGuard no_grad;
  for (Tensor p : params) add_(p, p.grad(), -lr);
  return loss;
}

Params on_cuda(const Params& init) {
  Params out;
  for (const Tensor& p : init) out.push_back(p.cuda().requires_grad_());
  return out;
}

// Two copies of the parameters `init` take four SGD steps each: one eagerly; the other two
// eagerly (the warm-up that creates the library handles, the error records, the algorithm
// choices and the allocator's cached blocks), then one step captured in global mode (where
// any synchronisation or device allocation, from any thread, invalidates the capture) and
// replayed twice. The replays must give the eager results.
void expect_replays_match_eager(const LossFn& loss_of, const Params& init, double lr, Tol tol) {
  CaptureApi api;
  ASSERT_TRUE(api.found()) << "the CUDA runtime's graph calls are not in this process";
  const Params eager = on_cuda(init), graphed = on_cuda(init);
  for (int i = 0; i < 2; ++i) {
    sgd_step(loss_of, eager, lr);
    sgd_step(loss_of, graphed, lr);
  }
  cuda_synchronize();  // nothing pending (and no recorded error) before the capture

  const int64_t mallocs = cuda_memory_stats().num_device_mallocs;
  void* graph = nullptr;
  ASSERT_EQ(api.begin(CaptureApi::kPerThreadStream, CaptureApi::kCaptureModeGlobal), 0);
  Tensor loss_graphed;  // allocated during the capture; each replay writes its loss there
  std::string threw;
  try {
    loss_graphed = sgd_step(loss_of, graphed, lr);
  } catch (const std::exception& e) {
    threw = e.what();
  }
  const int ended = api.end(CaptureApi::kPerThreadStream, &graph);  // always leave capture mode
  ASSERT_EQ(threw, "") << "the step threw while being captured";
  ASSERT_EQ(ended, 0) << api.name(ended)
                      << ": the step synchronised or allocated while being captured";
  EXPECT_EQ(cuda_memory_stats().num_device_mallocs, mallocs)
      << "the warm caching allocator should serve the captured step from its cache";

  void* exec = nullptr;
  const int made = api.instantiate(&exec, graph, 0);
  ASSERT_EQ(made, 0) << api.name(made);
  for (int i = 0; i < 2; ++i) {
    const int launched = api.launch(exec, CaptureApi::kPerThreadStream);
    ASSERT_EQ(launched, 0) << api.name(launched);
  }
  // Read the replays' results before any more device work: the caching allocator is not yet
  // graph-aware, so the graph's temporaries sit in blocks it considers free and the eager
  // steps below may be handed them.
  cuda_synchronize();
  std::vector<Tensor> replayed;
  for (const Tensor& p : graphed) replayed.push_back(p.detach().cpu());
  const Tensor replayed_loss = loss_graphed.detach().cpu();
  api.destroy_exec(exec);
  api.destroy_graph(graph);

  Tensor eager_loss;
  for (int i = 0; i < 2; ++i) eager_loss = sgd_step(loss_of, eager, lr);
  EXPECT_TRUE(test::all_close(replayed_loss, eager_loss.detach().cpu(), tol.rtol, tol.atol))
      << "loss of the last step";
  for (size_t i = 0; i < init.size(); ++i) {
    EXPECT_TRUE(test::all_close(replayed[i], eager[i].detach().cpu(), tol.rtol, tol.atol))
        << "parameter " << i;
    EXPECT_FALSE(equal(replayed[i], init[i])) << "parameter " << i << " never moved";
  }
}

TEST_F(CudaNnOps, LinearTrainingStepReplaysFromAGraph) {
  const Tensor x = rnd({32, 20}, 41, kFloat32).cuda();
  const Tensor y = test::uniform({32}, 42, 0, 10).to(kInt64).cuda();
  const LossFn loss_of = [&](const Params& p) { return cross_entropy(linear(x, p[0], p[1]), y); };
  // The same kernels on the same data: equal up to the last bit, or nearly, should cuBLASLt
  // pick an algorithm that reduces with atomics.
  expect_replays_match_eager(loss_of,
                             {rnd({10, 20}, 43, kFloat32, -0.3, 0.3), rnd({10}, 44, kFloat32)},
                             0.1, {1e-6, 1e-7});
}

TEST_F(CudaNnOps, ConvTrainingStepReplaysFromAGraph) {
  const Tensor x = rnd({8, 3, 8, 8}, 45, kFloat32, -2, 2).cuda();
  const Tensor y = test::uniform({8}, 46, 0, 10).to(kInt64).cuda();
  const LossFn loss_of = [&](const Params& p) {
    Tensor h = max_pool2d(relu(conv2d(x, p[0], p[1], {1, 1}, {1, 1})), {2, 2});
    return cross_entropy(linear(h.reshape({8, 4 * 4 * 4}), p[2], p[3]), y);
  };
  // cuDNN's backward algorithms may accumulate with atomics, in any order.
  expect_replays_match_eager(loss_of,
                             {rnd({4, 3, 3, 3}, 47, kFloat32, -0.5, 0.5), rnd({4}, 48, kFloat32),
                              rnd({10, 64}, 49, kFloat32, -0.2, 0.2), rnd({10}, 50, kFloat32)},
                             0.05, {1e-5, 1e-6});
}

}  // namespace

// cuDNN benchmark mode on, TF32 off, for one scope.
struct CudnnBenchmarkScope {
  bool tf32 = allow_tf32();
  CudnnBenchmarkScope() {
    set_cudnn_benchmark(true);
    set_allow_tf32(false);
  }
  ~CudnnBenchmarkScope() {
    set_cudnn_benchmark(false);
    set_allow_tf32(tf32);
  }
  CudnnBenchmarkScope(const CudnnBenchmarkScope&) = delete;
  CudnnBenchmarkScope& operator=(const CudnnBenchmarkScope&) = delete;
};

TEST_F(CudaNnOps, Conv2dInCudnnBenchmarkModeMatchesCpu) {
  // Each geometry twice: the first call times the algorithms (Find overwrites the output before
  // the chosen one writes it), the second takes the cached choice. 1 -> 32 channels is the
  // 3x3 whose heuristic backward-filter pick is slow; float32 must keep FMA math.
  const CudnnBenchmarkScope benchmark;
  struct Case {
    Shape x, w;
    bool channels_last;
  };
  const Case cases[] = {{{8, 1, 28, 28}, {32, 1, 3, 3}, false},
                        {{4, 16, 12, 12}, {32, 16, 3, 3}, false},
                        {{4, 16, 12, 12}, {32, 16, 3, 3}, true}};
  for (DType dt : {kFloat32, kBFloat16})
    for (const Case& c : cases)
      for (int rep = 0; rep < 2; ++rep) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " " + to_string(c.x) +
                     (c.channels_last ? " channels-last" : "") + " rep " + std::to_string(rep));
        const int64_t fan_in = c.w[1] * c.w[2] * c.w[3];
        EXPECT_TRUE(same_on_cuda(
            [&](const std::vector<Tensor>& v) {
              const Tensor x =
                  c.channels_last ? v[0].contiguous(MemoryFormat::ChannelsLast) : v[0];
              return conv2d(x, v[1], v[2], {1, 1}, {1, 1});
            },
            {rnd(c.x, 91, dt), rnd(c.w, 92, dt), rnd({c.w[0]}, 93, dt)}, tol_for(dt, fan_in),
            {tol_for(dt, c.w[0] * c.w[2] * c.w[3]), tol_for(dt, c.x[0] * c.x[2] * c.x[3])}));
      }
}

namespace {

// avg_pool2d forward and backward on both devices, from the same CPU values.
::testing::AssertionResult avg_pool_same_on_cuda(const PoolCase& p, DType dt) {
  const int64_t window = p.kernel[0] * p.kernel[1];
  return same_on_cuda(
      [&](const std::vector<Tensor>& v) {
        return avg_pool2d(v[0], p.kernel, p.stride, p.padding, p.ceil_mode, p.include_pad);
      },
      {rnd({p.n, p.c, p.h, p.w}, 17, dt)}, tol_for(dt, window), {tol_for(dt, window)});
}

}  // namespace

TEST_F(CudaNnOps, AvgPool2dThroughCudnnAndFallbackMatchCpu) {
  // Floor output sizes: cuDNN's forward (16-bit and float32), with both divisor rules. Then
  // what must stay on our kernels: ceil_mode whose last window overhangs the padded input
  // (16 + 2*1 - 3 is odd, so the ceil output is 9 where cuDNN's would be 8), and float64.
  // The planes as N x C past cuDNN's batch limit (80000 = 40000 x 2), and a prime count past
  // it that cannot be split (ours).
  for (bool include_pad : {true, false}) {
    const PoolCase through_cudnn[] = {
        {4, 8, 17, 16, {3, 3}, {2, 2}, {1, 1}, {1, 1}, false, include_pad},
        {2, 3, 32, 32, {3, 3}, {2, 2}, {1, 1}, {1, 1}, false, include_pad},
        {2, 5, 11, 9, {2, 3}, {1, 2}, {1, 1}, {1, 1}, false, include_pad},
    };
    const PoolCase fallback[] = {
        {2, 3, 16, 16, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true, include_pad},
        {1, 2, 10, 13, {3, 2}, {2, 3}, {1, 1}, {1, 1}, true, include_pad},
    };
    for (DType dt : {kBFloat16, kFloat16, kFloat32, kFloat64})
      for (const PoolCase& p : through_cudnn) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " floor " + std::to_string(p.h) + "x" +
                     std::to_string(p.w) + " include_pad=" + std::to_string(include_pad));
        EXPECT_TRUE(avg_pool_same_on_cuda(p, dt));
      }
    for (DType dt : {kBFloat16, kFloat32})
      for (const PoolCase& p : fallback) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " ceil " + std::to_string(p.h) + "x" +
                     std::to_string(p.w) + " include_pad=" + std::to_string(include_pad));
        EXPECT_TRUE(avg_pool_same_on_cuda(p, dt));
      }
    for (int64_t planes : {80000, 65537}) {
      SCOPED_TRACE(std::to_string(planes) + " planes include_pad=" + std::to_string(include_pad));
      const PoolCase p{1, planes, 4, 4, {3, 3}, {2, 2}, {1, 1}, {1, 1}, false, include_pad};
      EXPECT_TRUE(avg_pool_same_on_cuda(p, kFloat32));
    }
  }
}
