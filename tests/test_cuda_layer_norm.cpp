// CUDA layer_norm and rms_norm against the CPU reference from poisoned memory, in every
// floating dtype: odd row lengths on both sides of the warp / block switch (1024) and of the
// 16-byte fast path, long rows whose gradient sums no longer fit in shared memory, many rows,
// misaligned parameters, non-contiguous inputs; gradients of input, weight and bias alone and
// together; bit-identical gradients run after run; autocast; device errors. Skipped without a
// GPU.
#include <algorithm>
#include <cmath>

#include "anvil/amp/amp.h"
#include "support/cuda_check.h"

using namespace anvil;

namespace {

using test::rnd;
using test::same_on_cuda;
using test::Tol;

class CudaLayerNorm : public test::CudaTest {};

const DType kFloatTypes[] = {kFloat32, kFloat64, kFloat16, kBFloat16};

// The outputs (rounded once from float / double on both devices; the statistics are sums of
// `n` terms, in float on CUDA and double on the CPU) and gradients (sums over a row, and over
// `rows` rows for the parameters).
Tol out_tol(DType dt, int64_t n) {
  switch (dt) {
    case kFloat32: return {1e-4, 1e-6 * std::sqrt(double(n)) + 1e-5};
    case kFloat64: return {1e-10, 1e-12};
    case kFloat16: return {2e-3, 2e-3};
    default: return {1e-2, 1e-2};  // bfloat16
  }
}
Tol sum_tol(DType dt, int64_t len) {
  switch (dt) {
    case kFloat32: return {1e-4, 2e-6 * double(len) + 1e-5};
    case kFloat64: return {1e-10, 1e-12 * double(len)};
    case kFloat16: return {2e-2, 2e-2 * std::max(1.0, double(len) / 64)};
    default: return {2e-2, 2e-2 * std::max(1.0, double(len) / 64)};
  }
}

struct RowCase {
  int64_t rows, n;
};

// 1, 3, 33: scalar warp rows; 768, 1000: 16-byte warp rows; 1024 / 1025: the switch to a block
// per row; 4099: odd block rows (in float64 its sums spill from shared memory to global);
// 13000: long rows whose sums never fit in shared memory; 20000 x 33 and 3000 x 768: many rows
// per team, the full backward grid.
const RowCase kRowCases[] = {{5, 1},    {7, 3},      {64, 33},   {37, 768},  {19, 1000},
                             {6, 1024}, {6, 1025},   {9, 4099},  {3, 13000}, {20000, 33},
                             {3000, 768}};

std::string label(DType dt, const RowCase& c) {
  return std::string(dtype_name(dt)) + " [" + std::to_string(c.rows) + ", " +
         std::to_string(c.n) + "]";
}

}  // namespace

TEST_F(CudaLayerNorm, LayerNormMatchesCpu) {
  for (DType dt : kFloatTypes)
    for (const RowCase& c : kRowCases) {
      SCOPED_TRACE(label(dt, c));
      std::vector<Tensor> in = {rnd({c.rows, c.n}, 1, dt, -2, 3), rnd({c.n}, 2, dt, 0.5, 1.5),
                                rnd({c.n}, 3, dt)};
      const Tol gx = sum_tol(dt, c.n), gp = sum_tol(dt, c.rows);
      EXPECT_TRUE(same_on_cuda(
          [&](const std::vector<Tensor>& v) { return layer_norm(v[0], {c.n}, v[1], v[2]); }, in,
          out_tol(dt, c.n), {gx, gp, gp}));
      EXPECT_TRUE(same_on_cuda(
          [&](const std::vector<Tensor>& v) { return layer_norm(v[0], {c.n}, {}, {}, 1e-3); },
          {in[0]}, out_tol(dt, c.n), {gx}));
    }
}

TEST_F(CudaLayerNorm, RmsNormMatchesCpu) {
  for (DType dt : kFloatTypes)
    for (const RowCase& c : kRowCases) {
      SCOPED_TRACE(label(dt, c));
      std::vector<Tensor> in = {rnd({c.rows, c.n}, 4, dt, -2, 3), rnd({c.n}, 5, dt, 0.5, 1.5)};
      const Tol gx = sum_tol(dt, c.n), gp = sum_tol(dt, c.rows);
      EXPECT_TRUE(same_on_cuda(
          [&](const std::vector<Tensor>& v) { return rms_norm(v[0], {c.n}, v[1]); }, in,
          out_tol(dt, c.n), {gx, gp}));
      EXPECT_TRUE(same_on_cuda(
          [&](const std::vector<Tensor>& v) { return rms_norm(v[0], {c.n}); }, {in[0]},
          out_tol(dt, c.n), {gx}));
    }
}

// Several normalised dims, non-contiguous inputs and a misaligned float32 weight (a view one
// element into its storage: the 16-byte path must step aside).
TEST_F(CudaLayerNorm, ShapesViewsAndAlignment) {
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    const Tol o = out_tol(dt, 35), g = sum_tol(dt, 35);
    EXPECT_TRUE(same_on_cuda(
        [](const std::vector<Tensor>& v) { return layer_norm(v[0], {5, 7}, v[1], v[2]); },
        {rnd({3, 5, 7}, 1, dt), rnd({5, 7}, 2, dt), rnd({5, 7}, 3, dt)}, o, g));
    EXPECT_TRUE(same_on_cuda(
        [](const std::vector<Tensor>& v) { return rms_norm(v[0].transpose(0, 1), {5, 8}, v[1]); },
        {rnd({5, 3, 8}, 4, dt), rnd({5, 8}, 5, dt)}, o, g));
    EXPECT_TRUE(same_on_cuda(
        [](const std::vector<Tensor>& v) {
          return layer_norm(v[0].slice(1, 1, 65, 2), {32}, v[1], v[2]);
        },
        {rnd({40, 65}, 6, dt), rnd({32}, 7, dt), rnd({32}, 8, dt)}, o, g));
  }
  Tensor storage = rnd({769}, 9, kFloat32, 0.5, 1.5);
  EXPECT_TRUE(same_on_cuda(
      [](const std::vector<Tensor>& v) {
        return layer_norm(v[0], {768}, v[1].narrow(0, 1, 768), v[2].narrow(0, 1, 768));
      },
      {rnd({16, 768}, 10, kFloat32), storage, rnd({769}, 11, kFloat32)},
      out_tol(kFloat32, 768), sum_tol(kFloat32, 768)));
}

// Gradients asked for one at a time: input only (no parameter sums), a parameter only (no
// input gradient), and with 16-bit inputs a float32 weight (mixed precision).
TEST_F(CudaLayerNorm, PartialGradients) {
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    for (int64_t n : {int64_t(768), int64_t(4099)}) {
      const Tensor x = rnd({50, n}, 1, dt), w = rnd({n}, 2, kFloat32, 0.5, 1.5);
      const Tensor b = rnd({n}, 3, kFloat32);
      for (int which = 0; which < 3; ++which) {
        auto run = [&](Device d) {
          Tensor xd = x.to(d).detach(), wd = w.to(d).detach(), bd = b.to(d).detach();
          if (which == 0) xd.requires_grad_();
          if (which == 1) wd.requires_grad_();
          if (which == 2) bd.requires_grad_();
          Tensor y = layer_norm(xd, {n}, wd, bd);
          Tensor g = rnd(y.shape(), 4, y.dtype()).to(d);
          Tensor leaf = which == 0 ? xd : which == 1 ? wd : bd;
          return autograd::grad({y}, {leaf}, {g})[0];
        };
        Tensor want = run(kCPU);
        test::poison_device_cache();
        EXPECT_TRUE(test::close(run(kCUDA), want, which == 0 ? sum_tol(dt, n) : sum_tol(dt, 50)))
            << "gradient " << which << " n " << n;
      }
    }
  }
}

// The parameter gradients are partial sums per block added in block order: no atomics, so
// two backwards give the same bits.
TEST_F(CudaLayerNorm, BackwardIsBitIdenticalRunAfterRun) {
  for (DType dt : {kFloat32, kBFloat16})
    for (int64_t n : {int64_t(768), int64_t(4099)}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " n " + std::to_string(n));
      const Device cuda(kCUDA);
      Tensor x = rnd({2048, n}, 1, dt).to(cuda).requires_grad_();
      Tensor w = rnd({n}, 2, dt, 0.5, 1.5).to(cuda).requires_grad_();
      Tensor b = rnd({n}, 3, dt).to(cuda).requires_grad_();
      Tensor g = rnd({2048, n}, 4, dt).to(cuda);
      auto grads = [&] {
        std::vector<Tensor> out = autograd::grad({layer_norm(x, {n}, w, b)}, {x, w, b}, {g});
        out.push_back(autograd::grad({rms_norm(x, {n}, w)}, {w}, {g})[0]);
        return out;
      };
      std::vector<Tensor> first = grads();
      test::poison_device_cache();
      std::vector<Tensor> second = grads();
      for (size_t i = 0; i < first.size(); ++i)
        EXPECT_TRUE(equal(first[i], second[i])) << "gradient " << i << " differs between runs";
    }
}

TEST_F(CudaLayerNorm, AutocastAndDtypes) {
  Tensor x = rnd({8, 64}, 1, kBFloat16).cuda(), w = rnd({64}, 2, kFloat32).cuda();
  {
    amp::autocast ac(DeviceKind::CUDA, kBFloat16);
    EXPECT_EQ(layer_norm(x, {64}, w, w).dtype(), kFloat32);
    EXPECT_EQ(rms_norm(x, {64}, w).dtype(), kFloat32);
  }
  EXPECT_EQ(layer_norm(x, {64}, w, w).dtype(), kBFloat16);
  EXPECT_EQ(rms_norm(x, {64}, w).dtype(), kBFloat16);
}

TEST_F(CudaLayerNorm, Errors) {
  Tensor x = rnd({4, 6}, 1, kFloat32).cuda();
  EXPECT_TRUE(test::throws_with<DeviceError>([&] { layer_norm(x, {6}, ones({6})); },
                                             {"layer_norm", "one device", "cuda", "cpu"}));
  EXPECT_TRUE(test::throws_with<DeviceError>([&] { rms_norm(x.cpu(), {6}, x.select(0, 0)); },
                                             {"rms_norm", "one device"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { layer_norm(x, {5}); },
                                            {"layer_norm", "[*, 5]", "[4, 6]"}));
}
