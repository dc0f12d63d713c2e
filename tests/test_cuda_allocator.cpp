// The caching CUDA allocator: statistics, reuse, splitting, merging, data integrity, a
// training loop without device mallocs after warm-up, and out-of-memory errors. Skipped
// without a GPU (test_device.cpp checks that the statistics read zero there).
#include <string>
#include <vector>

#include "anvil/core/memory_stats.h"
#include "support/check.h"

using namespace anvil;

namespace {

constexpr int64_t kKiB = 1024, kMiB = 1024 * 1024;

Tensor bytes_on_gpu(int64_t n) { return empty({n}, TensorOptions(kUInt8).device(kCUDA)); }

class CudaAllocator : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device";
    // Start from an empty cache: no tensor outlives a test, so nothing stays reserved.
    cuda_empty_cache();
    ASSERT_EQ(cuda_memory_stats().allocated_bytes, 0);
    ASSERT_EQ(cuda_memory_stats().reserved_bytes, 0);
  }
};

TEST_F(CudaAllocator, StatsTrackManySizes) {
  const MemoryStats before = cuda_memory_stats();
  const std::vector<int64_t> sizes = {1,        100,          511,         512,
                                      513,      4 * kKiB,     kMiB - 1,    kMiB,
                                      kMiB + 1, 5 * kMiB + 7, 12 * kMiB + 3, 64 * kMiB};
  std::vector<Tensor> live;
  int64_t expected = 0;
  for (int64_t n : sizes) {
    live.push_back(bytes_on_gpu(n));
    expected += (n + 511) / 512 * 512;  // sizes are rounded up to 512 bytes
  }
  MemoryStats s = cuda_memory_stats();
  EXPECT_EQ(s.allocated_bytes, expected);
  EXPECT_GE(s.reserved_bytes, s.allocated_bytes);
  EXPECT_EQ(s.peak_allocated_bytes, expected);
  EXPECT_EQ(s.num_allocs - before.num_allocs, int64_t(sizes.size()));
  EXPECT_GT(s.num_device_mallocs, before.num_device_mallocs);
  const int64_t reserved = s.reserved_bytes;

  live.clear();
  s = cuda_memory_stats();
  EXPECT_EQ(s.allocated_bytes, 0);
  EXPECT_EQ(s.reserved_bytes, reserved);  // cached, not returned
  EXPECT_EQ(s.peak_allocated_bytes, expected);

  const int64_t frees = s.num_device_frees;
  cuda_empty_cache();
  s = cuda_memory_stats();
  EXPECT_EQ(s.reserved_bytes, 0);
  EXPECT_EQ(s.allocated_bytes, 0);
  EXPECT_EQ(s.num_device_frees - frees, s.num_device_mallocs - before.num_device_mallocs);
}

TEST_F(CudaAllocator, PeakTracking) {
  cuda_reset_peak_memory_stats();
  EXPECT_EQ(cuda_memory_stats().peak_allocated_bytes, 0);
  {
    Tensor a = bytes_on_gpu(3 * kMiB);
    Tensor b = bytes_on_gpu(kMiB);
    EXPECT_EQ(cuda_memory_stats().peak_allocated_bytes, 4 * kMiB);
  }
  Tensor c = bytes_on_gpu(kMiB);
  MemoryStats s = cuda_memory_stats();
  EXPECT_EQ(s.allocated_bytes, kMiB);
  EXPECT_EQ(s.peak_allocated_bytes, 4 * kMiB);
  cuda_reset_peak_memory_stats();
  EXPECT_EQ(cuda_memory_stats().peak_allocated_bytes, kMiB);
}

TEST_F(CudaAllocator, SameSizeIsReused) {
  for (int64_t n : {int64_t(4 * kKiB), 3 * kMiB, 40 * kMiB}) {
    SCOPED_TRACE(n);
    const int64_t mallocs = cuda_memory_stats().num_device_mallocs;
    for (int i = 0; i < 100; ++i) {
      Tensor t = bytes_on_gpu(n);
    }
    EXPECT_EQ(cuda_memory_stats().num_device_mallocs - mallocs, 1);
  }
}

TEST_F(CudaAllocator, LargeFreeBlockIsSplit) {
  bytes_on_gpu(40 * kMiB);  // reserves one 40 MiB segment, then frees it
  const MemoryStats s = cuda_memory_stats();
  ASSERT_EQ(s.reserved_bytes, 40 * kMiB);
  std::vector<Tensor> parts;
  for (int i = 0; i < 4; ++i) parts.push_back(bytes_on_gpu(8 * kMiB));
  parts.push_back(bytes_on_gpu(3 * kMiB));
  EXPECT_EQ(cuda_memory_stats().num_device_mallocs, s.num_device_mallocs);
  EXPECT_EQ(cuda_memory_stats().reserved_bytes, 40 * kMiB);
  EXPECT_EQ(cuda_memory_stats().allocated_bytes, 35 * kMiB);
  // Small requests come from the small pool's own segment.
  Tensor small = bytes_on_gpu(1000);
  EXPECT_EQ(cuda_memory_stats().num_device_mallocs, s.num_device_mallocs + 1);
  EXPECT_EQ(cuda_memory_stats().reserved_bytes, 42 * kMiB);
}

TEST_F(CudaAllocator, FreedNeighboursMerge) {
  bytes_on_gpu(30 * kMiB);
  const int64_t mallocs = cuda_memory_stats().num_device_mallocs;
  Tensor a = full({10 * kMiB / 4}, 1.0, kCUDA);
  Tensor b = full({10 * kMiB / 4}, 2.0, kCUDA);
  Tensor c = full({10 * kMiB / 4}, 3.0, kCUDA);
  EXPECT_EQ(cuda_memory_stats().num_device_mallocs, mallocs);
  a = Tensor();
  b = Tensor();
  Tensor ab = full({20 * kMiB / 4}, 4.0, kCUDA);
  EXPECT_EQ(cuda_memory_stats().num_device_mallocs, mallocs);
  EXPECT_TRUE(equal(c.cpu(), full({10 * kMiB / 4}, 3.0)));
  EXPECT_TRUE(equal(ab.cpu(), full({20 * kMiB / 4}, 4.0)));
  // Freeing all three merges the segment back whole: a 30 MiB request fits again.
  ab = Tensor();
  c = Tensor();
  Tensor whole = bytes_on_gpu(30 * kMiB);
  EXPECT_EQ(cuda_memory_stats().num_device_mallocs, mallocs);

  // The small pool merges too: two halves of a 2 MiB segment make a 1 MiB + 1 MiB pair again.
  Tensor x = bytes_on_gpu(512 * kKiB), y = bytes_on_gpu(512 * kKiB);
  const int64_t small_mallocs = cuda_memory_stats().num_device_mallocs;
  x = Tensor();
  y = Tensor();
  Tensor z = bytes_on_gpu(kMiB), w = bytes_on_gpu(kMiB);
  EXPECT_EQ(cuda_memory_stats().num_device_mallocs, small_mallocs);
}

TEST_F(CudaAllocator, LiveTensorsDoNotOverlap) {
  std::vector<Tensor> live;
  std::vector<double> values;
  const std::vector<int64_t> numels = {1, 3, 127, 128, 129, 1000, 70000, 262144, 300000,
                                       3 * kMiB, 1, 17};
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < numels.size(); ++i) {
      const double v = double(round * 100 + int(i) + 1);
      live.push_back(full({numels[i]}, v, kCUDA));
      values.push_back(v);
    }
    // Free every other tensor, so the next round reuses (and splits) the holes.
    for (size_t i = live.size(); i-- > 0;)
      if (i % 2 == 1) {
        live.erase(live.begin() + std::ptrdiff_t(i));
        values.erase(values.begin() + std::ptrdiff_t(i));
      }
  }
  for (size_t i = 0; i < live.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(equal(live[i].cpu(), full({live[i].numel()}, values[i])));
  }
}

TEST_F(CudaAllocator, TrainingLoopStopsMallocingAfterWarmUp) {
  auto model = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(20, 64), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(64, 64), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(64, 5)});
  model->to(kCUDA);
  optim::Adam opt(model->parameters(), {});
  Tensor x = test::uniform({32, 20}, 7, -1, 1, kFloat32).cuda();
  Tensor y = test::uniform({32}, 8, 0, 5).to(kInt64).cuda();
  int64_t mallocs = 0;
  float first = 0, last = 0;
  for (int step = 0; step < 10; ++step) {
    if (step == 3) mallocs = cuda_memory_stats().num_device_mallocs;
    Tensor loss = cross_entropy((*model)(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    last = loss.cpu().item<float>();
    if (step == 0) first = last;
  }
  EXPECT_EQ(cuda_memory_stats().num_device_mallocs, mallocs);
  EXPECT_LT(last, first);  // and it still trains
}

TEST_F(CudaAllocator, EmptyCacheReturnsUnusedSegments) {
  Tensor kept = bytes_on_gpu(kMiB + 1);  // keeps its 20 MiB segment
  { Tensor gone = bytes_on_gpu(50 * kMiB); }
  MemoryStats s = cuda_memory_stats();
  EXPECT_EQ(s.reserved_bytes, 70 * kMiB);
  cuda_empty_cache();
  MemoryStats t = cuda_memory_stats();
  EXPECT_EQ(t.reserved_bytes, 20 * kMiB);
  EXPECT_EQ(t.num_device_frees, s.num_device_frees + 1);
  EXPECT_EQ(t.allocated_bytes, s.allocated_bytes);
}

TEST_F(CudaAllocator, ImpossibleRequestNamesTheSize) {
  const int64_t pib = int64_t(1) << 50;
  try {
    bytes_on_gpu(pib);
    FAIL() << "allocating 1 PiB succeeded";
  } catch (const DeviceError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(std::to_string(pib)), std::string::npos) << msg;
    EXPECT_NE(msg.find("out of memory"), std::string::npos) << msg;
  }
  // The allocator still works afterwards.
  Tensor t = full({4}, 2.0, kCUDA);
  EXPECT_TRUE(equal(t.cpu(), full({4}, 2.0)));
}

}  // namespace
