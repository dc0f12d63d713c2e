// The cuDNN benchmark switch (torch.backends.cudnn.benchmark): off by default and round-trips.
// What it changes (CUDA convolutions) is tested in test_cuda_nn_ops.cpp.
#include "support/check.h"

using namespace anvil;

TEST(CudnnBenchmark, OffByDefaultAndRoundTrips) {
  EXPECT_FALSE(cudnn_benchmark_enabled());
  set_cudnn_benchmark(true);
  EXPECT_TRUE(cudnn_benchmark_enabled());
  set_cudnn_benchmark(false);
  EXPECT_FALSE(cudnn_benchmark_enabled());
}
