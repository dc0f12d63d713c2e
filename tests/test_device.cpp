// The CUDA entry points on a machine without a GPU: they do nothing, or report nothing, rather
// than fail. Skipped where a GPU is present (the test_cuda_* files cover that case).
#include "anvil/core/memory_stats.h"
#include "support/check.h"

using namespace anvil;

namespace {

class NoGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_is_available()) GTEST_SKIP() << "has a CUDA device";
  }
};

TEST_F(NoGpu, SynchronizeDoesNothing) { EXPECT_NO_THROW(cuda_synchronize()); }

TEST_F(NoGpu, MemoryStatisticsAreZero) {
  const MemoryStats s = cuda_memory_stats();
  EXPECT_EQ(s.allocated_bytes, 0);
  EXPECT_EQ(s.reserved_bytes, 0);
  EXPECT_EQ(s.num_device_mallocs, 0);
  EXPECT_NO_THROW(cuda_reset_peak_memory_stats());
  EXPECT_NO_THROW(cuda_empty_cache());
}

}  // namespace
