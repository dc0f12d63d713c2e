// Activations: checks, dispatch and gradients (through unary_backward_kernels).
#include "anvil/ops/activation.h"

#include "anvil/autograd/node.h"
#include "ops/checks.h"
#include "ops/unary.h"

namespace anvil {
namespace {
using backend::UnaryOp;

Tensor activation(UnaryOp op, const Tensor& x, const char* name, const char* node,
                  double alpha = 0) {
  Tensor out = ops::unary(op, x, name, alpha);
  // Detached: an output that held itself through its grad_fn would never be freed.
  Tensor saved = (backend::backward_saves_output(op) ? out : x).detach();
  return autograd::record(node, out, {x},
                          [op, saved, alpha](const Tensor& g) -> std::vector<Tensor> {
                            return {ops::unary_backward(op, g, saved, alpha)};
                          });
}

// Ops torch defines for floating inputs only.
void check_floating_input(const Tensor& x, const char* name) {
  ops::check_defined(x, name, "input");
  ops::check_floating(x, name, "input");
}
}  // namespace

Tensor relu(const Tensor& x) { return activation(UnaryOp::Relu, x, "relu", "ReluBackward"); }

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  check_floating_input(x, "leaky_relu");
  return activation(UnaryOp::LeakyRelu, x, "leaky_relu", "LeakyReluBackward", negative_slope);
}

Tensor elu(const Tensor& x, double alpha) {
  check_floating_input(x, "elu");
  return activation(UnaryOp::Elu, x, "elu", "EluBackward", alpha);
}

Tensor sigmoid(const Tensor& x) {
  return activation(UnaryOp::Sigmoid, x, "sigmoid", "SigmoidBackward");
}

Tensor tanh(const Tensor& x) { return activation(UnaryOp::Tanh, x, "tanh", "TanhBackward"); }

Tensor silu(const Tensor& x) {
  check_floating_input(x, "silu");
  return activation(UnaryOp::Silu, x, "silu", "SiluBackward");
}

Tensor gelu(const Tensor& x, const std::string& approximate) {
  ANVIL_CHECK(approximate == "none" || approximate == "tanh", ValueError,
              "gelu: expected approximate \"none\" or \"tanh\", got \"", approximate, "\"");
  check_floating_input(x, "gelu");
  return approximate == "none" ? activation(UnaryOp::GeluErf, x, "gelu", "GeluBackward")
                               : activation(UnaryOp::GeluTanh, x, "gelu", "GeluBackward");
}

}  // namespace anvil
