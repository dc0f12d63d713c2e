// Times one full training step (forward, loss, backward, optimizer update) of the workloads
// defined in ../shared/bench/torch_reference.py, with the same models, batch sizes, dtypes
// and optimizers, and prints one JSON line per workload in the reference's format so that
// bench/compare.py can put anvil and PyTorch side by side.
//
//   build/bench/bench_train_step [mlp cnn lstm resnet18 gpt2 gpt2_ckpt] [--device=cuda] [--steps=50] [--warm=15]
//                                [--modes=eager,graph] [--tf32=1]
//                                [--cudnn-benchmark=0]
//
// Mode "graph" replays each step as one CUDA graph launch after warm-up (train::GraphedStep);
// each line also gives the caching allocator's statistics (cudaMalloc calls after warm-up
// should be 0). With ANVIL_BENCH_DUMP_GRAPHS=DIR, DIR/<workload>.dot shows the graph's kernels.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "anvil/amp/amp.h"
#include "anvil/nn/models/gpt.h"
#include "anvil/nn/models/resnet.h"
#include "anvil/anvil.h"
#include "anvil/train/graphed_step.h"

using namespace anvil;
using Clock = std::chrono::steady_clock;

namespace {

struct Workload {
  nn::ModulePtr model;
  Tensor x, y;
  std::shared_ptr<optim::Optimizer> opt;
  int64_t units;                   // samples per step (tokens for gpt2)
  std::optional<DType> autocast = std::nullopt;  // mixed precision, as the reference's torch.autocast
  double flops_per_step = 0;       // model FLOPs of one step, where the workload states them
};

Workload mlp(Device d) {
  auto m = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(784, 512), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(512, 512), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(512, 10)});
  m->to(d);
  return {m, randn({128, 784}, d), randint(0, 10, {128}, TensorOptions(kInt64).device(d)),
          optim::make_optimizer("adam", m->parameters(), 1e-3), 128};
}

Workload cnn(Device d) {
  auto m = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Conv2d>(1, 32, 3), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Conv2d>(32, 64, 3), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Dropout>(0.25),
      std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(9216, 128),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::Dropout>(0.5),
      std::make_shared<nn::Linear>(128, 10)});
  m->to(d);
  return {m, randn({128, 1, 28, 28}, d), randint(0, 10, {128}, TensorOptions(kInt64).device(d)),
          optim::make_optimizer("adam", m->parameters(), 1e-3), 128};
}

// torch_reference.py's CharLSTM: Embedding(128, 128) -> LSTM(128, 512, 2 layers, batch_first)
// -> Linear(512, 128) on every step, batch 64 x 100 tokens, float32, Adam(1e-3).
Workload lstm(Device d) {
  auto m = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Embedding>(128, 128),
      std::make_shared<nn::LSTM>(128, 512, nn::RNNOptions{.num_layers = 2, .batch_first = true}),
      std::make_shared<nn::Linear>(512, 128)});
  m->to(d);
  return {m, randint(0, 128, {64, 100}, TensorOptions(kInt64).device(d)),
          randint(0, 128, {6400}, TensorOptions(kInt64).device(d)),
          optim::make_optimizer("adam", m->parameters(), 1e-3), 6400};
}
// torch_reference.py's ResNet18 (CIFAR-style, 3x32x32, batch 256) in bfloat16 autocast with
// SGD(momentum 0.9), fed channels-last as the reference is (conv2d, batch_norm and the
// element-wise ops keep it so; the parameters stay row-major, as a state dict has them).
Workload resnet18(Device d) {
  auto m = std::make_shared<nn::ResNet18>(10);
  m->to(d);
  auto opt =
      std::make_shared<optim::SGD>(m->parameters(), optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
  return {m, randn({256, 3, 32, 32}, d).contiguous(MemoryFormat::ChannelsLast),
          randint(0, 10, {256}, TensorOptions(kInt64).device(d)), opt, 256, kBFloat16};
}

// torch_reference.py's GPT (GPT-2 124M with its vocabulary padded to 50304, context 1024, tied
// embeddings, no dropout), batch 16 x 1024 tokens, bfloat16 autocast, fused AdamW(6e-4, weight
// decay 0.1). Model FLOPs per token as nanoGPT and llm.c count them: 6 N for the matrix
// products of the N parameters (forward and backward), plus 12 L T D for attention.
// gpt2_ckpt: the same with every block recomputed in the backward (GPTConfig::
// gradient_checkpointing), for the memory it saves and the time it costs.
Workload gpt2(Device d, bool checkpointing = false) {
  nn::GPTConfig c;
  c.vocab_size = 50304;
  c.dropout = 0;
  c.gradient_checkpointing = checkpointing;
  auto m = std::make_shared<nn::GPT>(c);
  m->to(d);
  auto opt = std::make_shared<optim::AdamW>(
      m->parameters(), optim::AdamWOptions{.lr = 6e-4, .weight_decay = 0.1});
  const int64_t B = 16, T = 1024;
  const double tokens = double(B * T);
  const double flops = tokens * (6.0 * double(m->num_parameters()) +
                                 12.0 * double(c.n_layer * T * c.n_embd));
  return {m, randint(0, 50257, {B, T}, TensorOptions(kInt64).device(d)),
          randint(0, 50257, {B * T}, TensorOptions(kInt64).device(d)), opt, B * T, kBFloat16,
          flops};
}

// One training step as torch_reference.py times it; the loss goes to `loss_out`, a tensor
// that outlives the step, so that the step can be replayed as a CUDA graph.
void step(Workload& w, const Tensor& x, const Tensor& y, const Tensor& loss_out) {
  w.opt->zero_grad();
  Tensor loss;
  {
    std::optional<amp::autocast> cast;
    if (w.autocast) cast.emplace(x.device().kind, *w.autocast);
    Tensor out = (*w.model)(x);
    if (out.dim() == 3) out = out.reshape({-1, out.size(-1)});  // a language model's [B, T, V]
    loss = cross_entropy(out, y);
  }
  loss.backward();
  w.opt->step();
  w.opt->zero_grad();
  NoGradGuard no_grad;
  loss_out.copy_(loss.detach());
}

// Waits for the step by reading its loss (a 4-byte copy), as a training loop would.
double sync(const Tensor& loss) { return loss.item<double>(); }

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> names;
  std::string device = cuda_is_available() ? "cuda" : "cpu";
  int steps = 50, warm = 15;
  std::vector<std::string> modes = {"eager", "graph"};
  bool tf32 = true;  // torch_reference.py turns TF32 on for matmuls and convolutions
  bool cudnn_benchmark = false;  // torch.backends.cudnn.benchmark; off by default, as in PyTorch
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--device=", 0) == 0) device = a.substr(9);
    else if (a.rfind("--steps=", 0) == 0) steps = std::stoi(a.substr(8));
    else if (a.rfind("--warm=", 0) == 0) warm = std::stoi(a.substr(7));
    else if (a.rfind("--tf32=", 0) == 0) tf32 = a.substr(7) != "0";
    else if (a.rfind("--cudnn-benchmark=", 0) == 0) cudnn_benchmark = a.substr(18) != "0";
    else if (a.rfind("--modes=", 0) == 0) {
      modes.clear();
      std::string list = a.substr(8);
      for (size_t pos = 0; pos <= list.size();) {
        size_t comma = std::min(list.find(',', pos), list.size());
        modes.push_back(list.substr(pos, comma - pos));
        pos = comma + 1;
      }
    }
    else names.push_back(a);
  }
  if (names.empty()) names = {"mlp", "cnn"};
  Device d(device);
  set_allow_tf32(tf32);
  set_cudnn_benchmark(cudnn_benchmark);  // the eager warm-up steps time the convolutions
  for (const auto& name : names) {
    if (name != "mlp" && name != "cnn" && name != "resnet18" && name != "gpt2" && name != "lstm" &&
        name != "gpt2_ckpt") {
      std::printf("{\"workload\": \"%s\", \"mode\": \"anvil-eager\", \"error\": \"not supported yet\"}\n",
                  name.c_str());
      continue;
    }
    for (const std::string& mode : modes) {
      manual_seed(0);
      Workload w = name == "mlp"    ? mlp(d)
                   : name == "cnn"  ? cnn(d)
                   : name == "gpt2" ? gpt2(d)
                   : name == "lstm" ? lstm(d)
                   : name == "gpt2_ckpt" ? gpt2(d, true)
                                    : resnet18(d);
      Tensor loss = zeros({}, TensorOptions(kFloat32).device(d));
      train::GraphedStep graphed(
          d, [&](const Tensor& x, const Tensor& y) { step(w, x, y, loss); },
          [&] { return w.opt->hyper_version(); }, mode == "graph");
      auto run = [&] {
        if (mode == "graph") w.opt->prepare_step();
        graphed(w.x, w.y);
      };
      auto t0 = Clock::now();
      for (int i = 0; i < warm; ++i) run();
      sync(loss);
      double warm_s = std::chrono::duration<double>(Clock::now() - t0).count();
      const MemoryStats after_warmup = d.is_cuda() ? cuda_memory_stats(d.index) : MemoryStats{};
      std::vector<double> ms;
      for (int i = 0; i < steps; ++i) {
        auto a = Clock::now();
        run();
        sync(loss);
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
      }
      std::sort(ms.begin(), ms.end());
      auto b = Clock::now();
      for (int i = 0; i < steps; ++i) run();
      const double final_loss = sync(loss);
      double pipelined = std::chrono::duration<double, std::milli>(Clock::now() - b).count() / steps;
      const MemoryStats end = d.is_cuda() ? cuda_memory_stats(d.index) : MemoryStats{};
      std::printf(
          "{\"workload\": \"%s\", \"mode\": \"anvil-%s\", \"device\": \"%s\", "
          "\"median_step_ms\": %.4f, \"pipelined_step_ms\": %.4f, \"units_per_s\": %.0f, "
          "\"params\": %lld, \"warm_s\": %.1f, \"final_loss\": %.4f, \"graph_replays\": %lld, "
          "\"peak_mem_mb\": %.0f, \"reserved_mb\": %.0f, \"cuda_mallocs\": %lld, "
          "\"cuda_mallocs_after_warmup\": %lld, \"tf32\": %d, \"cudnn_benchmark\": %d, "
          "\"graph_nodes\": %zu, \"model_tflops_per_s\": %.1f}\n",
          name.c_str(), mode.c_str(), d.str().c_str(), ms[ms.size() / 2], pipelined,
          double(w.units) / (pipelined / 1e3), (long long)w.model->num_parameters(), warm_s,
          final_loss, (long long)graphed.replays(), double(end.peak_allocated_bytes) / (1 << 20),
          double(end.reserved_bytes) / (1 << 20), (long long)end.num_device_mallocs,
          (long long)(end.num_device_mallocs - after_warmup.num_device_mallocs), int(tf32),
          int(cudnn_benchmark), graphed.graph_nodes(), w.flops_per_step / (pipelined / 1e3) / 1e12);
      if (const char* dir = std::getenv("ANVIL_BENCH_DUMP_GRAPHS"))  // the kernels of one step
        graphed.debug_dump(std::string(dir) + "/" + name + ".dot");
      if (mode == "graph" && !graphed.enabled())
        std::fprintf(stderr, "%s: CUDA graphs were switched off: %s\n", name.c_str(),
                     graphed.disabled_reason().c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
