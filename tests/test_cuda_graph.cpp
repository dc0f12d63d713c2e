// CUDA graphs: capture and replay of anvil ops, random draws that advance on every replay,
// the graph's private memory pool, failed captures, and whole training steps (GraphedStep and
// the Trainer) replayed as graphs giving the same parameters as eager steps. Skipped without
// a GPU.
#include <vector>

#include "anvil/anvil.h"
#include "anvil/core/cuda_graph.h"
#include "anvil/train/graphed_step.h"
#include "support/check.h"

using namespace anvil;

namespace {

class CudaGraph : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device";
  }
};

Tensor cpu_copy(const Tensor& t) { return t.to(kCPU); }

TEST_F(CudaGraph, ReplaysCapturedOpsOnNewInputData) {
  Tensor x = test::uniform({64, 32}, 1, -1, 1, kFloat32).to(kCUDA);
  Tensor w = test::uniform({32, 16}, 2, -1, 1, kFloat32).to(kCUDA);
  Tensor y = relu(matmul(x, w));  // warm-up: library plans exist before the capture
  CUDAGraph g;
  g.capture_begin();
  Tensor out = relu(matmul(x, w));
  Tensor total = sum(out);
  g.capture_end();
  EXPECT_TRUE(g.captured());
  EXPECT_GE(g.num_nodes(), 3u);  // at least the product, the relu and the sum
  for (uint64_t seed : {3, 4, 5}) {
    Tensor next = test::uniform({64, 32}, seed, -1, 1, kFloat32);
    x.copy_(next.to(kCUDA));
    g.replay();
    Tensor expected = relu(matmul(next, w.to(kCPU)));
    EXPECT_TRUE(test::all_close(cpu_copy(out), expected, 1e-5, 1e-5)) << "seed " << seed;
    EXPECT_TRUE(test::all_close(cpu_copy(total), sum(expected), 1e-4, 1e-4));
  }
}

TEST_F(CudaGraph, RandomDrawsAdvanceOnEveryReplayLikeEagerDraws) {
  const Device cuda = kCUDA;
  manual_seed(11);
  Tensor eager1 = rand({1000}, TensorOptions().device(cuda)).to(kCPU);
  Tensor eager2 = randn({1000}, TensorOptions().device(cuda)).to(kCPU);
  Tensor eager3 = rand({1000}, TensorOptions().device(cuda)).to(kCPU);
  Tensor eager4 = randn({1000}, TensorOptions().device(cuda)).to(kCPU);

  manual_seed(11);
  Tensor u = empty({1000}, TensorOptions().device(cuda));
  Tensor n = empty({1000}, TensorOptions().device(cuda));
  CUDAGraph g;
  g.capture_begin();
  u.copy_(rand({1000}, TensorOptions().device(cuda)));
  n.copy_(randn({1000}, TensorOptions().device(cuda)));
  g.capture_end();
  // Capturing drew nothing: the first replay draws what the first eager calls drew.
  g.replay();
  EXPECT_TRUE(equal(cpu_copy(u), eager1));
  EXPECT_TRUE(equal(cpu_copy(n), eager2));
  g.replay();
  EXPECT_TRUE(equal(cpu_copy(u), eager3));
  EXPECT_TRUE(equal(cpu_copy(n), eager4));
  // Eager draws after the replays continue the same sequence.
  EXPECT_EQ(default_generator(cuda).offset(), 4u * 250u);
}

TEST_F(CudaGraph, RandomDrawsFollowEagerDrawsAndReseedsBetweenReplays) {
  // Consecutive replays advance the draw base on the device; an eager draw or manual_seed in
  // between moves the generator, and the next replay must start where it now stands.
  const Device cuda = kCUDA;
  auto draw = [&] { return rand({1000}, TensorOptions().device(cuda)).to(kCPU); };
  manual_seed(5);
  std::vector<Tensor> eager;
  for (int i = 0; i < 4; ++i) eager.push_back(draw());
  manual_seed(7);
  Tensor reseeded = draw();

  manual_seed(5);
  Tensor u = empty({1000}, TensorOptions().device(cuda));
  CUDAGraph g;
  g.capture_begin();
  u.copy_(rand({1000}, TensorOptions().device(cuda)));
  g.capture_end();
  g.replay();
  EXPECT_TRUE(equal(cpu_copy(u), eager[0]));
  EXPECT_TRUE(equal(draw(), eager[1]));  // an eager draw between two replays
  g.replay();
  EXPECT_TRUE(equal(cpu_copy(u), eager[2]));
  g.replay();  // straight after the last: the base the device advanced itself
  EXPECT_TRUE(equal(cpu_copy(u), eager[3]));
  manual_seed(7);
  g.replay();
  EXPECT_TRUE(equal(cpu_copy(u), reseeded));
}

TEST_F(CudaGraph, ReplaysMakeNoDeviceMallocsAndResetReturnsThePool) {
  Tensor x = test::uniform({256, 256}, 1, -1, 1, kFloat32).to(kCUDA);
  Tensor w = test::uniform({256, 256}, 2, -1, 1, kFloat32).to(kCUDA);
  (void)matmul(x, w);
  cuda_empty_cache();
  const int64_t reserved_before = cuda_memory_stats().reserved_bytes;
  Tensor out;
  {
    CUDAGraph g;
    g.capture_begin();
    Tensor h = tanh(matmul(x, w));  // temporaries freed inside the capture
    out = sum(matmul(h, w), {0});
    g.capture_end();
    const MemoryStats captured = cuda_memory_stats();
    EXPECT_GT(captured.reserved_bytes, reserved_before);
    for (int i = 0; i < 10; ++i) g.replay();
    EXPECT_EQ(cuda_memory_stats().num_device_mallocs, captured.num_device_mallocs);
    // Eager work while the graph lives never gets the graph's memory.
    Tensor other = full({256}, 7.0f, TensorOptions().device(kCUDA));
    g.replay();
    EXPECT_TRUE(test::all_close(cpu_copy(out), sum(matmul(tanh(matmul(x, w)), w), {0}).to(kCPU),
                                1e-4, 1e-4));
    EXPECT_TRUE(equal(cpu_copy(other), full({256}, 7.0f)));
  }
  // `out` (from the graph's pool) outlives the graph; its segment returns once it goes.
  out = Tensor();
  cuda_empty_cache();
  EXPECT_EQ(cuda_memory_stats().reserved_bytes, reserved_before);
}

TEST_F(CudaGraph, AHostSyncInsideTheCaptureFailsCleanly) {
  Tensor x = ones({8}, TensorOptions().device(kCUDA));
  CUDAGraph g;
  g.capture_begin();
  Tensor y = sum(mul(x, 2.0));
  // Reading a value back cannot be captured: refused, and the capture fails even though the
  // caller caught the error.
  EXPECT_TRUE(test::throws_with<DeviceError>([&] { (void)y.item<float>(); },
                                             {"copy to host memory", "CUDA graph"}));
  EXPECT_TRUE(test::throws_with<DeviceError>([&] { g.capture_end(); },
                                             {"capture_end", "copy to host memory"}));
  EXPECT_FALSE(g.captured());
  EXPECT_FALSE(g.capturing());
  // The device and the allocator carry on eagerly.
  EXPECT_TRUE(equal(cpu_copy(mul(x, 3.0)), full({8}, 3.0f)));
  EXPECT_THROW(g.replay(), DeviceError);
}

nn::ModulePtr small_net(Device d) {
  auto m = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(20, 32), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Dropout>(0.2), std::make_shared<nn::Linear>(32, 5)});
  m->to(d);
  return m;
}

// Trains the same network the same way with and without graphs; the kernels are the same,
// so the parameters must be bit-identical (dropout masks included).
TEST_F(CudaGraph, GraphedStepTrainsExactlyLikeEagerSteps) {
  const Device cuda = kCUDA;
  Tensor xs = test::uniform({7, 16, 20}, 3, -1, 1, kFloat32);
  Tensor ys = randint(0, 5, {7, 16}, TensorOptions(kInt64));
  auto run = [&](bool graphs, int64_t* replays, int64_t* mallocs_after_warmup) {
    manual_seed(5);
    auto net = small_net(cuda);
    optim::Adam opt(net->parameters(), {.lr = 1e-2});
    Tensor loss_sum = zeros({}, TensorOptions().device(cuda));
    train::GraphedStep step(
        cuda,
        [&](const Tensor& x, const Tensor& y) {
          opt.zero_grad();
          Tensor loss = cross_entropy((*net)(x), y);
          loss.backward();
          opt.step();
          opt.zero_grad();
          NoGradGuard g;
          add_(loss_sum, loss.detach());
        },
        [&] { return opt.hyper_version(); }, graphs);
    int64_t mallocs = 0;
    for (int epoch = 0; epoch < 4; ++epoch) {
      if (epoch == 1) opt.set_lr(5e-3);  // an LR change must reach the replays
      for (int64_t i = 0; i < 7; ++i) {
        // The last batch of each epoch is a partial one: a second graph.
        const int64_t n = i == 6 ? 9 : 16;
        // Both shapes are captured before epoch 3 (the partial batch runs eagerly in epochs 0
        // and 1 and is captured in epoch 2): from then on, no step may allocate device memory.
        if (epoch == 3 && i == 0) mallocs = cuda_memory_stats().num_device_mallocs;
        opt.prepare_step();
        step(xs.select(0, i).narrow(0, 0, n), ys.select(0, i).narrow(0, 0, n));
      }
    }
    *replays = step.replays();
    *mallocs_after_warmup = cuda_memory_stats().num_device_mallocs - mallocs;
    std::vector<Tensor> out;
    for (const Tensor& p : net->parameters()) out.push_back(p.to(kCPU));
    out.push_back(loss_sum.to(kCPU));
    return out;
  };
  int64_t eager_replays = 0, graph_replays = 0, eager_mallocs = 0, graph_mallocs = 0;
  std::vector<Tensor> eager = run(false, &eager_replays, &eager_mallocs);
  std::vector<Tensor> graphed = run(true, &graph_replays, &graph_mallocs);
  EXPECT_EQ(eager_replays, 0);
  // 7 batches x 4 epochs = 28 steps; warm-up: 2 per shape; the LR change recaptures nothing.
  EXPECT_EQ(graph_replays, 24);
  EXPECT_EQ(graph_mallocs, 0);
  ASSERT_EQ(eager.size(), graphed.size());
  for (size_t i = 0; i < eager.size(); ++i)
    EXPECT_TRUE(equal(eager[i], graphed[i])) << "tensor " << i;
}

// Also under mixed precision: bfloat16 autocast, and float16 with its loss scaler (whose
// skip-on-overflow and scale update happen on the device, inside the graph).
class CudaGraphTrainer : public CudaGraph,
                         public ::testing::WithParamInterface<std::optional<DType>> {};

TEST_P(CudaGraphTrainer, WithGraphsMatchesEagerTrainer) {
  Tensor x = test::uniform({100, 20}, 8, -1, 1, kFloat32);
  Tensor y = randint(0, 5, {100}, TensorOptions(kInt64));
  auto fit = [&](bool graphs, int64_t* replays) {
    manual_seed(9);
    auto net = small_net(kCUDA);
    auto ds = std::make_shared<data::TensorDataset>(x, y);
    data::DataLoader loader(ds, {.batch_size = 32, .shuffle = true, .seed = 1, .pin_memory = true});
    train::Trainer t(net, optim::make_optimizer("sgd", net->parameters(), 0.1),
                     nn::make_loss("cross_entropy"),
                     {.device = kCUDA, .cuda_graphs = graphs, .mixed_precision = GetParam()});
    train::History h = t.fit(loader, 4);
    *replays = t.graphed_step() ? t.graphed_step()->replays() : 0;
    std::vector<Tensor> out;
    for (const Tensor& p : net->parameters()) out.push_back(p.to(kCPU));
    out.push_back(tensor(std::vector<double>{h.epochs().back().values.at("loss")}));
    return out;
  };
  int64_t eager_replays = 0, graph_replays = 0;
  auto eager = fit(false, &eager_replays);
  auto graphed = fit(true, &graph_replays);
  EXPECT_EQ(eager_replays, 0);
  EXPECT_GT(graph_replays, 0);
  for (size_t i = 0; i < eager.size(); ++i)
    EXPECT_TRUE(equal(eager[i], graphed[i])) << "tensor " << i;
}

INSTANTIATE_TEST_SUITE_P(Precisions, CudaGraphTrainer,
                         ::testing::Values(std::nullopt, std::optional<DType>(kBFloat16),
                                           std::optional<DType>(kFloat16)));

}  // namespace
