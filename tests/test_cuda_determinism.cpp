// Deterministic mode on CUDA: convolution, embedding and index_select gradients are
// bit-identical run after run, and ops that only have an atomics-based CUDA kernel for
// floating types refuse to run. Skipped
// without a GPU.
#include "anvil/anvil.h"
#include "support/check.h"

using namespace anvil;

namespace {

class CudaDeterminism : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device";
    use_deterministic_algorithms(true);
  }
  void TearDown() override { use_deterministic_algorithms(false); }
};

// Input, weight and bias gradients of a strided, padded convolution with many output
// positions per weight (where atomics-based algorithms would reorder the sums).
std::vector<Tensor> conv_grads(const Tensor& x, const Tensor& w, const Tensor& b,
                               const Tensor& g) {
  Tensor xd = x.to(kCUDA).requires_grad_(true), wd = w.to(kCUDA).requires_grad_(true),
         bd = b.to(kCUDA).requires_grad_(true);
  Tensor y = conv2d(xd, wd, bd, {2, 2}, {1, 1});
  sum(mul(y, g.to(kCUDA))).backward();
  return {y.to(kCPU), xd.grad().to(kCPU), wd.grad().to(kCPU), bd.grad().to(kCPU)};
}

TEST_F(CudaDeterminism, ConvolutionGradientsAreBitIdenticalRunAfterRun) {
  Tensor x = test::uniform({32, 16, 33, 33}, 1, -1, 1, kFloat32);
  Tensor w = test::uniform({24, 16, 3, 3}, 2, -1, 1, kFloat32);
  Tensor b = test::uniform({24}, 3, -1, 1, kFloat32);
  Tensor g = test::uniform({32, 24, 17, 17}, 4, -1, 1, kFloat32);
  std::vector<Tensor> first = conv_grads(x, w, b, g);
  for (int run = 0; run < 3; ++run) {
    std::vector<Tensor> again = conv_grads(x, w, b, g);
    for (size_t i = 0; i < first.size(); ++i)
      EXPECT_TRUE(equal(first[i], again[i])) << "run " << run << " tensor " << i;
  }
  // And they are the convolution's gradients (the CPU reference).
  Tensor xc = x.requires_grad_(true), wc = w.requires_grad_(true), bc = b.requires_grad_(true);
  sum(mul(conv2d(xc, wc, bc, {2, 2}, {1, 1}), g)).backward();
  EXPECT_TRUE(test::all_close(first[1], xc.grad(), 1e-4, 1e-4));
  EXPECT_TRUE(test::all_close(first[2], wc.grad(), 1e-3, 1e-3));
  EXPECT_TRUE(test::all_close(first[3], bc.grad(), 1e-3, 1e-3));
}

// The backward of embedding and index_select sums duplicate rows by sorting the index: the
// same bits twice, float64 sums within one rounding, in float32 and bfloat16, with outer dims
// (index_select along a middle dim) and many duplicates.
TEST_F(CudaDeterminism, EmbeddingAndIndexSelectBackwardsAreRepeatable) {
  manual_seed(3);
  const Tensor ids = randint(0, 40, {3000}, TensorOptions(kInt64));
  for (DType dt : {kFloat32, kBFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    const Tensor w = test::uniform({50, 96}, 4, -1, 1, kFloat32).to(dt);
    const Tensor g = test::uniform({3000, 96}, 5, -1, 1, kFloat32).to(dt);
    const Tensor x = test::uniform({3, 50, 17}, 6, -1, 1, kFloat32).to(dt);
    const Tensor gx = test::uniform({3, 3000, 17}, 7, -1, 1, kFloat32).to(dt);
    auto grads = [&](Device d, DType as) {
      Tensor wd = w.to(d, as).requires_grad_(), xd = x.to(d, as).requires_grad_();
      sum(mul(embedding(wd, ids.to(d)), g.to(d, as))).backward();
      sum(mul(index_select(xd, 1, ids.to(kInt32).to(d)), gx.to(d, as))).backward();
      return std::vector<Tensor>{wd.grad().cpu(), xd.grad().cpu()};
    };
    // The reference: the same values summed in float64 (a 16-bit sum on the CPU rounds at
    // every add; the CUDA kernel adds in float32 and rounds once).
    const auto first = grads(kCUDA, dt), second = grads(kCUDA, dt), cpu = grads(kCPU, kFloat64);
    const double tol = dt == kFloat32 ? 1e-5 : 1e-2;
    for (size_t i = 0; i < first.size(); ++i) {
      EXPECT_TRUE(equal(first[i], second[i])) << "gradient " << i;
      EXPECT_TRUE(test::all_close(first[i].to(kFloat32), cpu[i].to(kFloat32), tol, tol))
          << "gradient " << i;
    }
  }
}

TEST_F(CudaDeterminism, AtomicFloatingAccumulationRefusesToRun) {
  Tensor a = zeros({5, 3}, TensorOptions().device(kCUDA));
  Tensor idx = tensor(std::vector<int64_t>{0, 1, 1, 4}, {4, 1}).expand({4, 3}).contiguous().to(kCUDA);
  Tensor src = ones({4, 3}, TensorOptions().device(kCUDA));
  EXPECT_TRUE(test::throws_with<DeviceError>([&] { (void)scatter_add(a, 0, idx, src); },
                                             {"scatter_add", "deterministic", "float32"}));
  // Integer sums do not depend on the order: they run.
  Tensor ai = zeros({5, 3}, TensorOptions(kInt64).device(kCUDA));
  Tensor out = scatter_add(ai, 0, idx, src.to(kInt64)).to(kCPU);
  EXPECT_EQ(out.select(0, 1).select(0, 0).item<int64_t>(), 2);
  // With the mode off, floating sums run again.
  use_deterministic_algorithms(false);
  Tensor f = scatter_add(a, 0, idx, src).to(kCPU);
  EXPECT_EQ(f.select(0, 1).select(0, 2).item<float>(), 2.0f);
}

}  // namespace
