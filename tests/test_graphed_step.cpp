// GraphedStep and CUDAGraph where no graph can be made (CPU device, graphs off, no CUDA
// device), and the generator's capture bookkeeping, which is host-side.
#include <vector>

#include "anvil/anvil.h"
#include "anvil/core/cuda_graph.h"
#include "anvil/train/graphed_step.h"
#include "support/check.h"

using namespace anvil;

TEST(GraphedStep, RunsEveryStepEagerlyOnTheCpu) {
  std::vector<std::pair<Shape, Shape>> seen;
  train::GraphedStep step(kCPU, [&](const Tensor& x, const Tensor& y) {
    EXPECT_EQ(x.device(), kCPU);
    seen.emplace_back(x.shape(), y.shape());
  });
  EXPECT_FALSE(step.enabled());
  for (int i = 0; i < 5; ++i) step(zeros({4, 3}), zeros({4}));
  step(zeros({2, 3}), zeros({2}));
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen.back().first, (Shape{2, 3}));
  EXPECT_EQ(step.replays(), 0);
  EXPECT_EQ(step.captures(), 0);
}

TEST(GraphedStep, RefusesAnEmptyStepFunction) {
  EXPECT_TRUE(test::throws_with<ValueError>(
      [] { train::GraphedStep step(kCPU, nullptr); }, {"GraphedStep", "empty"}));
}

TEST(CUDAGraphNoGpu, NamesWhyNoGraphCanBeMade) {
  EXPECT_TRUE(test::throws_with<DeviceError>([] { CUDAGraph g(kCPU); },
                                             {"CUDAGraph", "expected a CUDA device", "cpu"}));
  if (cuda_is_available()) GTEST_SKIP() << "has a CUDA device";
  EXPECT_THROW(CUDAGraph g(kCUDA), DeviceError);
}

TEST(GeneratorCapture, ReservationsInsideACaptureAreRelativeAndLeaveTheOffsetAlone) {
  Generator g(42);
  g.set_offset(100);
  const uint64_t device_state[2] = {0, 0};
  g.begin_capture(device_state);
  Generator::Draw a = g.reserve_draw(10);
  Generator::Draw b = g.reserve_draw(5);
  EXPECT_EQ(a.device_state, device_state);
  EXPECT_EQ(a.first_block, 0u);
  EXPECT_EQ(b.first_block, 10u);
  EXPECT_THROW(g.reserve(1), DeviceError);  // an absolute reservation would be baked in
  EXPECT_EQ(g.end_capture(), 15u);
  EXPECT_EQ(g.offset(), 100u);
  Generator::Draw c = g.reserve_draw(3);
  EXPECT_EQ(c.device_state, nullptr);
  EXPECT_EQ(c.first_block, 100u);
  EXPECT_EQ(c.seed, 42u);
  EXPECT_EQ(g.offset(), 103u);
}
