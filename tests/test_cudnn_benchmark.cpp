// The cuDNN benchmark switch (torch.backends.cudnn.benchmark): off by default, round-trips,
// and leaves CPU convolutions unchanged. Its CUDA behaviour is in test_cuda_nn_ops.cpp.
#include "support/check.h"

using namespace anvil;

TEST(CudnnBenchmark, OffByDefaultAndRoundTrips) {
  EXPECT_FALSE(cudnn_benchmark_enabled());
  set_cudnn_benchmark(true);
  EXPECT_TRUE(cudnn_benchmark_enabled());
  set_cudnn_benchmark(false);
  EXPECT_FALSE(cudnn_benchmark_enabled());
}

TEST(CudnnBenchmark, CpuConvolutionIsUnaffected) {
  const Tensor x = test::uniform({2, 3, 7, 7}, 1, -1, 1, kFloat32);
  const Tensor w = test::uniform({4, 3, 3, 3}, 2, -1, 1, kFloat32);
  const Tensor off = conv2d(x, w, Tensor(), {1, 1}, {1, 1});
  set_cudnn_benchmark(true);
  const Tensor on = conv2d(x, w, Tensor(), {1, 1}, {1, 1});
  set_cudnn_benchmark(false);
  EXPECT_TRUE(test::all_close(on, off, 0, 0));
}
