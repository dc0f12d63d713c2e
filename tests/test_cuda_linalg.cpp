// CUDA matrix products (cuBLASLt, and the integer kernel) against the CPU reference: mm, bmm,
// matmul and linear over odd sizes, transposed and offset views, broadcast batches, empty
// products, every dtype, with gradients; TF32 on and off. Skipped without a GPU.
#include <functional>

#include "support/cuda_check.h"

using namespace anvil;

// The TF32 switch lives in the CUDA backend (backend/cuda/tf32.h); weak, so that this file also
// links into builds without CUDA, where the tests skip.
namespace anvil::cuda {
[[gnu::weak]] void set_allow_tf32(bool on);
}

namespace {

using test::rnd;
using test::same_on_cuda;
using test::Tol;

class CudaLinalg : public test::CudaTest {};

// Tolerances for a product whose sums run over `len` terms of values in [-1, 1].
Tol tol_for(DType dt, int64_t len) {
  switch (dt) {
    case kFloat32: return {1e-5, 2e-6 * double(len)};
    case kFloat64: return {1e-12, 1e-13 * double(len)};
    case kFloat16:
    case kBFloat16: return {2e-2, 2e-2};
    default: return {0, 0};
  }
}

const DType kFloats[] = {kFloat32, kFloat64, kBFloat16, kFloat16};

TEST_F(CudaLinalg, MmOddSizesEveryFloatDtype) {
  const int64_t shapes[][3] = {{1, 1, 1}, {1, 7, 1}, {7, 5, 3},     {129, 7, 1},
                               {1, 129, 7}, {33, 129, 65}, {64, 96, 128}, {7, 1, 129}};
  for (DType dt : kFloats)
    for (auto [m, k, n] : shapes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " m=" + std::to_string(m) +
                   " k=" + std::to_string(k) + " n=" + std::to_string(n));
      const int64_t len = std::max({m, n, k});
      EXPECT_TRUE(same_on_cuda([](const std::vector<Tensor>& v) { return mm(v[0], v[1]); },
                               {rnd({m, k}, 1, dt), rnd({k, n}, 2, dt)}, tol_for(dt, k),
                               tol_for(dt, len)));
    }
}

TEST_F(CudaLinalg, TransposedAndOffsetViews) {
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    const Tol t = tol_for(dt, 129);
    // a^T b, a b^T, a^T b^T: the kernel gets contiguous transposes with the flags set.
    EXPECT_TRUE(same_on_cuda([](const std::vector<Tensor>& v) { return mm(v[0].t(), v[1]); },
                             {rnd({129, 7}, 3, dt), rnd({129, 33}, 4, dt)}, t, t));
    EXPECT_TRUE(same_on_cuda([](const std::vector<Tensor>& v) { return mm(v[0], v[1].t()); },
                             {rnd({7, 129}, 5, dt), rnd({33, 129}, 6, dt)}, t, t));
    EXPECT_TRUE(same_on_cuda(
        [](const std::vector<Tensor>& v) { return mm(v[0].t(), v[1].t()); },
        {rnd({65, 7}, 7, dt), rnd({33, 65}, 8, dt)}, t, t));
    // Rows from an odd offset: contiguous operands whose addresses are only element-aligned.
    EXPECT_TRUE(same_on_cuda(
        [](const std::vector<Tensor>& v) {
          return mm(v[0].slice(0, 1, 8), v[1].slice(0, 3, 132));
        },
        {rnd({8, 129}, 9, dt), rnd({132, 17}, 10, dt)}, t, t));
    // Batched transposes.
    EXPECT_TRUE(same_on_cuda(
        [](const std::vector<Tensor>& v) {
          return bmm(v[0].transpose(1, 2), v[1].transpose(1, 2));
        },
        {rnd({3, 129, 7}, 11, dt), rnd({3, 5, 129}, 12, dt)}, t, t));
  }
}

TEST_F(CudaLinalg, BatchedAndBroadcastProducts) {
  for (DType dt : kFloats) {
    SCOPED_TRACE(dtype_name(dt));
    const Tol t = tol_for(dt, 129);
    EXPECT_TRUE(same_on_cuda([](const std::vector<Tensor>& v) { return bmm(v[0], v[1]); },
                             {rnd({5, 7, 129}, 13, dt), rnd({5, 129, 3}, 14, dt)}, t, t));
    EXPECT_TRUE(same_on_cuda([](const std::vector<Tensor>& v) { return matmul(v[0], v[1]); },
                             {rnd({2, 1, 7, 5}, 15, dt), rnd({3, 5, 129}, 16, dt)}, t, t));
    EXPECT_TRUE(same_on_cuda([](const std::vector<Tensor>& v) { return matmul(v[0], v[1]); },
                             {rnd({4, 7, 33}, 17, dt), rnd({33, 9}, 18, dt)}, t, t));
    EXPECT_TRUE(same_on_cuda([](const std::vector<Tensor>& v) { return matmul(v[0], v[1]); },
                             {rnd({129}, 19, dt), rnd({129}, 20, dt)}, t, t));
    EXPECT_TRUE(same_on_cuda([](const std::vector<Tensor>& v) { return matmul(v[0], v[1]); },
                             {rnd({7}, 21, dt), rnd({6, 7, 5}, 22, dt)}, t, t));
  }
}

TEST_F(CudaLinalg, LinearWithBias) {
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    const Tol t = tol_for(dt, 129);
    EXPECT_TRUE(same_on_cuda(
        [](const std::vector<Tensor>& v) { return linear(v[0], v[1], v[2]); },
        {rnd({5, 7, 129}, 23, dt), rnd({17, 129}, 24, dt), rnd({17}, 25, dt)}, t, t));
    EXPECT_TRUE(same_on_cuda([](const std::vector<Tensor>& v) { return linear(v[0], v[1]); },
                             {rnd({1, 33}, 26, dt), rnd({1, 33}, 27, dt)}, t, t));
  }
}

TEST_F(CudaLinalg, IntegerProductsWrapLikeTheCpu) {
  for (DType dt : {kInt32, kInt64, kUInt8}) {
    SCOPED_TRACE(dtype_name(dt));
    const double lo = dt == kUInt8 ? 0 : -1000, hi = dt == kUInt8 ? 255 : 1000;
    Tensor a = test::uniform({3, 9, 130}, 28, lo, hi).to(dt);
    Tensor b = test::uniform({3, 130, 5}, 29, lo, hi).to(dt);
    EXPECT_TRUE(same_on_cuda([](const std::vector<Tensor>& v) { return bmm(v[0], v[1]); },
                             {a, b}, {0, 0}, {0, 0}));
    EXPECT_TRUE(same_on_cuda(
        [](const std::vector<Tensor>& v) { return mm(v[0].select(0, 0).t(), v[1].select(0, 1).t()); },
        {test::uniform({2, 130, 9}, 30, lo, hi).to(dt), test::uniform({2, 5, 130}, 31, lo, hi).to(dt)},
        {0, 0}, {0, 0}));
  }
  // int32 sums that overflow wrap modulo 2^32 on both devices.
  Tensor big = full({4, 64}, int64_t(1048579), kInt32);
  EXPECT_TRUE(same_on_cuda([](const std::vector<Tensor>& v) { return mm(v[0], v[1].t()); },
                           {big, big}, {0, 0}, {0, 0}));
}

TEST_F(CudaLinalg, EmptyProducts) {
  for (DType dt : {kFloat32, kInt64}) {
    Tensor a = zeros({4, 0}, dt).cuda(), b = zeros({0, 3}, dt).cuda();
    Tensor out = mm(a, b);  // an empty sum: zeros, whatever the memory held
    EXPECT_TRUE(test::all_close(out.cpu().to(kFloat64), zeros({4, 3}, kFloat64)));
    EXPECT_EQ(mm(zeros({0, 5}, dt).cuda(), zeros({5, 3}, dt).cuda()).shape(), (Shape{0, 3}));
    EXPECT_EQ(bmm(zeros({0, 2, 5}, dt).cuda(), zeros({0, 5, 3}, dt).cuda()).shape(),
              (Shape{0, 2, 3}));
  }
}

TEST_F(CudaLinalg, LargerFloat32ProductIsExactWithoutTf32) {
  EXPECT_TRUE(same_on_cuda([](const std::vector<Tensor>& v) { return mm(v[0], v[1]); },
                           {rnd({256, 512}, 32, kFloat32), rnd({512, 384}, 33, kFloat32)},
                           tol_for(kFloat32, 512), tol_for(kFloat32, 512)));
}

TEST_F(CudaLinalg, Tf32WhenAllowed) {
  if (!&anvil::cuda::set_allow_tf32) GTEST_SKIP() << "no CUDA backend in this build";
  anvil::cuda::set_allow_tf32(true);
  const Tol t{1e-3, 2e-3 * 23};  // ~2^-11 relative per product, sqrt(512) ~ 23 terms deep
  auto r = same_on_cuda([](const std::vector<Tensor>& v) { return mm(v[0], v[1]); },
                        {rnd({256, 512}, 34, kFloat32), rnd({512, 129}, 35, kFloat32)}, t, t);
  anvil::cuda::set_allow_tf32(false);
  EXPECT_TRUE(r);
}

}  // namespace
