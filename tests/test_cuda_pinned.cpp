// Page-locked host memory: pin_memory, asynchronous uploads whose source blocks are not
// reused before the copies finish, and pinned DataLoader batches. Skipped without a GPU.
#include <vector>

#include "anvil/anvil.h"
#include "anvil/core/pinned_memory.h"
#include "support/check.h"

using namespace anvil;

namespace {

class CudaPinned : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_F(CudaPinned, PinMemoryCopiesIntoPageLockedMemory) {
  Tensor t = test::uniform({7, 5}, 1, -1, 1, kFloat32);
  Tensor p = t.t().pin_memory();  // a non-contiguous source comes out contiguous
  EXPECT_TRUE(p.is_pinned());
  EXPECT_FALSE(t.is_pinned());
  EXPECT_TRUE(p.is_contiguous());
  EXPECT_TRUE(equal(p, t.t()));
  EXPECT_EQ(p.pin_memory().data_ptr(), p.data_ptr());  // already pinned: itself
  EXPECT_TRUE(p.narrow(0, 1, 2).is_pinned());            // views into the block too
  EXPECT_TRUE(test::throws_with<DeviceError>([&] { (void)t.to(kCUDA).pin_memory(); },
                                             {"pin_memory", "CPU tensor"}));
}

// Many uploads in flight from blocks freed at once: a block reused before its copy ran would
// hand a later batch's values to an earlier upload.
TEST_F(CudaPinned, FreedBlocksAreNotReusedBeforeTheirCopiesFinish) {
  const int64_t n = 1 << 20;
  std::vector<Tensor> on_device;
  Tensor slow = rand({2048, 2048}, TensorOptions().device(kCUDA));
  for (int i = 0; i < 40; ++i) {
    if (i % 8 == 0) slow = matmul(slow, slow);  // keep the stream busy behind the copies
    Tensor pinned = full({n}, float(i)).pin_memory();
    Tensor d = empty({n}, TensorOptions().device(kCUDA));
    d.copy_(pinned);  // asynchronous; `pinned` goes right after
    on_device.push_back(d);
  }
  for (int i = 0; i < 40; ++i) {
    Tensor back = on_device[size_t(i)].to(kCPU);
    EXPECT_EQ(min(back).item<float>(), float(i)) << "upload " << i;
    EXPECT_EQ(max(back).item<float>(), float(i)) << "upload " << i;
  }
}

TEST_F(CudaPinned, DataLoaderPinsBatchesWhenAsked) {
  Tensor x = test::uniform({50, 3}, 2, -1, 1, kFloat32);
  Tensor y = arange(50);
  auto ds = std::make_shared<data::TensorDataset>(x, y);
  data::DataLoader pinned(ds, {.batch_size = 16, .pin_memory = true});
  data::DataLoader plain(ds, {.batch_size = 16});
  std::vector<Tensor> a, b;
  for (auto& batch : pinned) {
    EXPECT_TRUE(batch.input.is_pinned());
    EXPECT_TRUE(batch.target.is_pinned());
    a.push_back(batch.input.to(kCUDA));
  }
  for (auto& batch : plain) {
    EXPECT_FALSE(batch.input.is_pinned());
    b.push_back(batch.input);
  }
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(equal(a[i].to(kCPU), b[i]));
}

}  // namespace
