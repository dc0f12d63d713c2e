// First steps with anvil: tensors, autograd and a hand-written training loop.
//
// Fits a two-layer network to three interleaved spirals (a classic toy problem that a linear
// model cannot solve), updating the weights with plain gradient descent. Runs on the CPU in a
// few seconds; pass "cuda" as the first argument to run on a GPU once the CUDA kernels exist.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "anvil/anvil.h"

using namespace anvil;


int main(int argc, char** argv) {
  Device device(argc > 1 ? argv[1] : "cpu");
  manual_seed(0);
  Generator gen(0);
  const int64_t n = 200, classes = 3, hidden = 64;

  // Data: radius grows along each arm, the angle turns with it, plus a little noise.
  Tensor t = linspace(0.0, 1.0, n, kFloat32);                               // [n]
  std::vector<Tensor> xs, ys;
  for (int64_t c = 0; c < classes; ++c) {
    Tensor angle = add(mul(t, 4.0), double(c) * 2.0943951 /* 2 pi / 3 */);
    angle = add(angle, mul(randn({n}, {}, &gen), 0.2));
    xs.push_back(stack({mul(t, cos(angle)), mul(t, sin(angle))}, 1));       // [n, 2]
    ys.push_back(full({n}, c, kInt64));
  }
  Tensor x = cat(xs, 0).to(device), y = cat(ys, 0).to(device);

  // Parameters, initialised like torch.nn.Linear (uniform in +-1/sqrt(fan_in)).
  auto param = [&](Shape shape, int64_t fan_in) {
    Tensor p = empty(shape, TensorOptions(kFloat32).device(device));
    double bound = 1.0 / std::sqrt(double(fan_in));
    uniform_(p, -bound, bound, &gen);
    return p.requires_grad_();
  };
  Tensor w1 = param({hidden, 2}, 2), b1 = param({hidden}, 2);
  Tensor w2 = param({classes, hidden}, hidden), b2 = param({classes}, hidden);
  std::vector<Tensor*> params{&w1, &b1, &w2, &b2};

  const double lr = 0.5;
  const int steps = 1000;
  auto start = std::chrono::steady_clock::now();
  for (int step = 1; step <= steps; ++step) {
    Tensor logits = linear(relu(linear(x, w1, b1)), w2, b2);
    Tensor loss = cross_entropy(logits, y);
    for (Tensor* p : params) p->set_grad(Tensor());
    loss.backward();
    {
      NoGradGuard no_grad;  // the update itself is not part of the graph
      for (Tensor* p : params) sub_(*p, p->grad(), lr);
    }
    if (step % 100 == 0 || step == 1) {
      double acc = mean(eq(argmax(logits, 1), y).to(kFloat32)).item<double>();
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("step %4d/%d  loss %.4f  accuracy %5.1f%%  %.0f steps/s\n", step, steps,
                  loss.item<double>(), 100 * acc, step / secs);
    }
  }
  return 0;
}
