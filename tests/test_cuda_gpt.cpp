// GPT on CUDA: the same logits and parameter gradients as on the CPU with the same weights
// (float32, from poisoned memory), and training runs whose whole step is captured into a CUDA
// graph (position ids and dropout made on the device) giving the same parameters as eager
// steps, in float32 and under bfloat16 autocast. Skipped without a GPU.
#include <optional>
#include <vector>

#include "anvil/anvil.h"
#include "anvil/core/cuda_graph.h"
#include "anvil/nn/models/gpt.h"
#include "support/cuda_check.h"

using namespace anvil;

namespace {

class CudaGPT : public test::CudaTest {};

nn::GPTConfig tiny(double dropout) {
  nn::GPTConfig c;
  c.vocab_size = 61;
  c.n_positions = 24;
  c.n_embd = 32;
  c.n_layer = 2;
  c.n_head = 4;
  c.dropout = dropout;
  return c;
}

Tensor token_ids(const Shape& shape, uint64_t seed, int64_t vocab) {
  manual_seed(seed);
  return randint(0, vocab, shape, TensorOptions(kInt64));
}

TEST_F(CudaGPT, LogitsAndGradientsMatchTheCpu) {
  manual_seed(3);
  nn::GPT cpu(tiny(0));
  manual_seed(3);
  nn::GPT gpu(tiny(0));
  gpu.to(kCUDA);
  Tensor ids = token_ids({3, 19}, 4, 61);
  Tensor weights = test::uniform({3, 19, 61}, 5, -1, 1, kFloat32);
  Tensor out_cpu = cpu(ids);
  sum(mul(out_cpu, weights)).backward();
  test::poison_device_cache();
  Tensor out_gpu = gpu(ids.to(kCUDA));
  test::poison_device_cache();
  sum(mul(out_gpu, weights.to(kCUDA))).backward();
  EXPECT_TRUE(test::close(out_gpu, out_cpu, {1e-4, 1e-5}, "logits"));
  auto pc = cpu.named_parameters(), pg = gpu.named_parameters();
  ASSERT_EQ(pc.size(), pg.size());
  for (size_t i = 0; i < pc.size(); ++i)
    EXPECT_TRUE(test::close(pg[i].second.grad(), pc[i].second.grad(), {1e-3, 1e-5},
                            "grad of " + pc[i].first));
}

TEST_F(CudaGPT, ArangeIsMadeOnTheDeviceAndCapturable) {
  Tensor a = arange(5, 17, 1, TensorOptions(kInt64).device(kCUDA));  // warm-up outside
  CUDAGraph g;
  g.capture_begin();
  Tensor b = arange(5, 17, 1, TensorOptions(kInt64).device(kCUDA));
  Tensor l = linspace(-1, 2, 7, TensorOptions(kFloat32).device(kCUDA));
  g.capture_end();
  g.replay();
  EXPECT_TRUE(equal(b.cpu(), arange(5, 17, 1, TensorOptions(kInt64))));
  EXPECT_TRUE(equal(l.cpu(), linspace(-1, 2, 7, TensorOptions(kFloat32))));
}

// The Trainer's graphed steps against its eager steps, in deterministic mode (without it the
// embeddings' backward and fused attention's query gradients add with atomics in whatever
// order threads arrive, and Adam turns last-bit differences of near-zero gradients into
// visible ones): the same kernels in the same order and the same dropout masks give the same
// parameters bit for bit, and the graph must be used.
class CudaGPTTrainer : public CudaGPT,
                       public ::testing::WithParamInterface<std::optional<DType>> {};

TEST_P(CudaGPTTrainer, GraphedStepsMatchEagerSteps) {
  Tensor ids = token_ids({40, 17}, 6, 61);
  Tensor x = ids.narrow(1, 0, 16).contiguous(), y = ids.narrow(1, 1, 16).contiguous();
  use_deterministic_algorithms(true);
  struct Restore {
    ~Restore() { use_deterministic_algorithms(false); }
  } restore;
  auto fit = [&](bool graphs, int64_t* replays) {
    manual_seed(7);
    auto net = std::make_shared<nn::GPT>(tiny(0.1));
    net->to(kCUDA);
    auto ds = std::make_shared<data::TensorDataset>(x, y);
    data::DataLoader loader(ds, {.batch_size = 8, .shuffle = true, .seed = 1});
    train::Trainer t(net, optim::make_optimizer("adamw", net->parameters(), 1e-3),
                     nn::make_loss("cross_entropy"),
                     {.device = kCUDA, .cuda_graphs = graphs, .mixed_precision = GetParam()});
    t.fit(loader, 3);
    *replays = t.graphed_step() ? t.graphed_step()->replays() : 0;
    if (t.graphed_step()) {
      EXPECT_EQ(t.graphed_step()->disabled_reason(), "");
    }
    std::vector<Tensor> out;
    for (const Tensor& p : net->parameters()) out.push_back(p.to(kCPU));
    return out;
  };
  int64_t eager_replays = 0, graph_replays = 0;
  auto eager = fit(false, &eager_replays);
  auto graphed = fit(true, &graph_replays);
  EXPECT_EQ(eager_replays, 0);
  EXPECT_GT(graph_replays, 0);
  ASSERT_EQ(eager.size(), graphed.size());
  for (size_t i = 0; i < eager.size(); ++i)
    EXPECT_TRUE(equal(eager[i], graphed[i])) << "parameter " << i;
}

INSTANTIATE_TEST_SUITE_P(Precisions, CudaGPTTrainer,
                         ::testing::Values(std::nullopt, std::optional<DType>(kBFloat16)));

}  // namespace
