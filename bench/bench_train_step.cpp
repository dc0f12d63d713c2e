// Times one full training step (forward, loss, backward, optimizer update) of the workloads
// defined in ../shared/bench/torch_reference.py, with the same models, batch sizes, dtypes
// and optimizers, and prints one JSON line per workload in the reference's format so that
// bench/compare.py can put anvil and PyTorch side by side.
//
//   build/bench/bench_train_step [mlp cnn] [--device=cuda] [--steps=50] [--warm=15]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "anvil/anvil.h"

using namespace anvil;
using Clock = std::chrono::steady_clock;

namespace {

struct Workload {
  nn::ModulePtr model;
  Tensor x, y;
  std::shared_ptr<optim::Optimizer> opt;
  int64_t units;  // samples per step
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

Tensor step(Workload& w) {
  w.opt->zero_grad();
  Tensor loss = cross_entropy((*w.model)(w.x), w.y);
  loss.backward();
  w.opt->step();
  return loss;
}

// Waits for the step by reading its loss (a 4-byte copy), as a training loop would.
void sync(const Tensor& loss) { loss.item<double>(); }

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> names;
  std::string device = cuda_is_available() ? "cuda" : "cpu";
  int steps = 50, warm = 15;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--device=", 0) == 0) device = a.substr(9);
    else if (a.rfind("--steps=", 0) == 0) steps = std::stoi(a.substr(8));
    else if (a.rfind("--warm=", 0) == 0) warm = std::stoi(a.substr(7));
    else names.push_back(a);
  }
  if (names.empty()) names = {"mlp", "cnn"};
  Device d(device);
  for (const auto& name : names) {
    if (name != "mlp" && name != "cnn") {
      std::printf("{\"workload\": \"%s\", \"mode\": \"anvil-eager\", \"error\": \"not supported yet\"}\n",
                  name.c_str());
      continue;
    }
    manual_seed(0);
    Workload w = name == "mlp" ? mlp(d) : cnn(d);
    auto t0 = Clock::now();
    Tensor last;
    for (int i = 0; i < warm; ++i) last = step(w);
    sync(last);
    double warm_s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::vector<double> ms;
    for (int i = 0; i < steps; ++i) {
      auto a = Clock::now();
      sync(step(w));
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
    }
    std::sort(ms.begin(), ms.end());
    auto b = Clock::now();
    for (int i = 0; i < steps; ++i) last = step(w);
    sync(last);
    double pipelined = std::chrono::duration<double, std::milli>(Clock::now() - b).count() / steps;
    std::printf("{\"workload\": \"%s\", \"mode\": \"anvil-eager\", \"device\": \"%s\", "
                "\"median_step_ms\": %.4f, \"pipelined_step_ms\": %.4f, \"units_per_s\": %.0f, "
                "\"params\": %lld, \"warm_s\": %.1f, \"final_loss\": %.4f}\n",
                name.c_str(), d.str().c_str(), ms[ms.size() / 2], pipelined,
                double(w.units) / (pipelined / 1e3), (long long)w.model->num_parameters(), warm_s,
                last.item<double>());
    std::fflush(stdout);
  }
  return 0;
}
