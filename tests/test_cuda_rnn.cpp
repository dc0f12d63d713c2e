// Recurrent layers on CUDA: the fused step loop (gate kernels + cuBLASLt products) against the
// CPU for every cell, direction, padding and floating dtype, from poisoned memory; an LSTM
// module's outputs and parameter gradients against the CPU; and a Trainer whose LSTM step is
// captured into a CUDA graph giving the same parameters as eager steps. Skipped without a GPU.
#include <string>
#include <vector>

#include "anvil/anvil.h"
#include "support/cuda_check.h"

using namespace anvil;

namespace {

class CudaRecurrent : public test::CudaTest {};

const char* name_of(RecurrentCell c) {
  switch (c) {
    case RecurrentCell::RNNTanh:
      return "RNN tanh";
    case RecurrentCell::RNNRelu:
      return "RNN relu";
    case RecurrentCell::LSTM:
      return "LSTM";
    case RecurrentCell::GRU:
      break;
  }
  return "GRU";
}

TEST_F(CudaRecurrent, StepLoopMatchesTheCpu) {
  const int64_t T = 7, N = 5, H = 37;  // odd sizes: no row starts 16-byte aligned
  const Tensor lengths = tensor(std::vector<int64_t>{7, 1, 4, 7, 2}, {N});
  const Tensor keep = lt(arange(0, T, 1, TensorOptions(kInt64)).view({T, 1}), lengths.view({1, N}));
  for (DType dt : {kFloat32, kFloat64, kBFloat16})
    for (RecurrentCell cell :
         {RecurrentCell::RNNTanh, RecurrentCell::RNNRelu, RecurrentCell::LSTM, RecurrentCell::GRU})
      for (bool reverse : {false, true})
        for (bool padded : {false, true}) {
          const bool lstm = cell == RecurrentCell::LSTM;
          const int64_t G = lstm ? 4 : cell == RecurrentCell::GRU ? 3 : 1;
          const double scale = 1.0 / std::sqrt(double(H));
          std::vector<Tensor> in = {test::rnd({T, N, G * H}, 1, dt), test::rnd({N, H}, 2, dt),
                                    lstm ? test::rnd({N, H}, 3, dt) : Tensor(),
                                    test::rnd({G * H, H}, 4, dt, -scale, scale),
                                    test::rnd({G * H}, 5, dt)};
          const test::Tol tol = dt == kFloat64   ? test::Tol{1e-10, 1e-12}
                                : dt == kFloat32 ? test::Tol{1e-4, 1e-5}
                                                 : test::Tol{3e-2, 3e-2};
          EXPECT_TRUE(test::same_on_cuda(
              [&](const std::vector<Tensor>& t) {
                const Tensor k = padded ? keep.to(t[0].device()) : Tensor();
                const RecurrentLayerOutput r =
                    recurrent_layer(cell, t[0], t[1], t[2], t[3], t[4], reverse, k);
                std::vector<Tensor> parts = {r.output.reshape({-1}), r.h_n.reshape({-1})};
                if (lstm) parts.push_back(r.c_n.reshape({-1}));
                return cat(parts, 0);
              },
              in, tol, tol))
              << name_of(cell) << " " << dtype_name(dt) << (reverse ? " reverse" : "")
              << (padded ? " padded" : "");
        }
}

TEST_F(CudaRecurrent, BidirectionalLSTMWithLengthsMatchesTheCpu) {
  manual_seed(3);
  nn::LSTM cpu(6, 24, {.num_layers = 2, .batch_first = true, .bidirectional = true});
  manual_seed(3);
  nn::LSTM gpu(6, 24, {.num_layers = 2, .batch_first = true, .bidirectional = true});
  gpu.to(kCUDA);
  const Tensor x = test::uniform({4, 9, 6}, 1, -1, 1, kFloat32);
  const Tensor lengths = tensor(std::vector<int64_t>{9, 3, 6, 1}, {4});
  const Tensor w = test::uniform({4, 9, 48}, 2, -1, 1, kFloat32);
  auto [out_c, h_c, c_c] = cpu(x, {}, {}, lengths);
  sum(add(mul(out_c, w), add(sum(h_c), sum(c_c)))).backward();
  test::poison_device_cache();
  auto [out_g, h_g, c_g] = gpu(x.cuda(), {}, {}, lengths);
  sum(add(mul(out_g, w.cuda()), add(sum(h_g), sum(c_g)))).backward();
  EXPECT_TRUE(test::close(out_g, out_c, {1e-4, 1e-5}, "output"));
  EXPECT_TRUE(test::close(h_g, h_c, {1e-4, 1e-5}, "h_n"));
  EXPECT_TRUE(test::close(c_g, c_c, {1e-4, 1e-5}, "c_n"));
  auto pc = cpu.named_parameters(), pg = gpu.named_parameters();
  ASSERT_EQ(pc.size(), pg.size());
  for (size_t i = 0; i < pc.size(); ++i)
    EXPECT_TRUE(test::close(pg[i].second.grad(), pc[i].second.grad(), {1e-3, 1e-4},
                            "grad of " + pc[i].first));
}

// A character-level LSTM language model as torch_reference.py's lstm workload, small: the
// graphed Trainer steps give the eager steps' parameters bit for bit (deterministic mode: the
// embedding's backward adds in a fixed order), and the graph is used.
struct CharLSTM : nn::Module {
  CharLSTM() {
    embed = register_module("embed", std::make_shared<nn::Embedding>(50, 16));
    lstm = register_module(
        "lstm",
        std::make_shared<nn::LSTM>(16, 32, nn::RNNOptions{.num_layers = 2, .batch_first = true}));
    head = register_module("head", std::make_shared<nn::Linear>(32, 50));
  }
  Tensor forward(const Tensor& ids) override {
    return head->forward((*lstm)(embed->forward(ids)));  // [B, T, 50], as the GPT's logits
  }
  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Linear> head;
};

TEST_F(CudaRecurrent, GraphedTrainerStepsMatchEagerSteps) {
  manual_seed(6);
  const Tensor ids = randint(0, 50, {32, 13}, TensorOptions(kInt64));
  const Tensor x = ids.narrow(1, 0, 12).contiguous();
  const Tensor y = ids.narrow(1, 1, 12).contiguous();
  use_deterministic_algorithms(true);
  struct Restore {
    ~Restore() { use_deterministic_algorithms(false); }
  } restore;
  auto fit = [&](bool graphs, int64_t* replays) {
    manual_seed(7);
    auto net = std::make_shared<CharLSTM>();
    net->to(kCUDA);
    auto ds = std::make_shared<data::TensorDataset>(x, y);
    data::DataLoader loader(ds, {.batch_size = 8, .shuffle = true, .seed = 1});
    train::Trainer t(net, optim::make_optimizer("adam", net->parameters(), 1e-3),
                     nn::make_loss("cross_entropy"), {.device = kCUDA, .cuda_graphs = graphs});
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

}  // namespace
