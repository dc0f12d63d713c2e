#include "anvil/nn/models/resnet.h"

#include "anvil/ops/pool.h"
#include "nn/repr.h"

namespace anvil::nn {

BasicBlock::BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride)
    : in_channels(in_channels), out_channels(out_channels), stride(stride) {
  ANVIL_CHECK(in_channels > 0 && out_channels > 0 && stride > 0, ValueError,
              "BasicBlock: expected positive in_channels, out_channels and stride, got ",
              in_channels, ", ", out_channels, " and ", stride);
  // Registration order is PyTorch's, so state_dict() lists the keys in the same order.
  c1 = register_module("c1", std::make_shared<Conv2d>(in_channels, out_channels, 3, stride, 1, 1, 1,
                                                      /*bias=*/false));
  b1 = register_module("b1", std::make_shared<BatchNorm2d>(out_channels));
  c2 = register_module("c2", std::make_shared<Conv2d>(out_channels, out_channels, 3, 1, 1, 1, 1,
                                                      /*bias=*/false));
  b2 = register_module("b2", std::make_shared<BatchNorm2d>(out_channels));
  sc = register_module("sc", std::make_shared<Sequential>());
  if (stride != 1 || in_channels != out_channels) {
    sc->push_back(std::make_shared<Conv2d>(in_channels, out_channels, 1, stride, 0, 1, 1,
                                           /*bias=*/false));
    sc->push_back(std::make_shared<BatchNorm2d>(out_channels));
  }
}

Tensor BasicBlock::forward(const Tensor& x) {
  // BatchNorm's forward_relu: one fused kernel each where the backend has it (cuDNN, CUDA).
  Tensor out = b1->forward_relu(c1->forward(x));
  return b2->forward_relu(c2->forward(out), sc->forward(x));
}

std::string BasicBlock::extra_repr() const {
  return detail::cat("in_channels=", in_channels, ", out_channels=", out_channels,
                     ", stride=", stride);
}

ResNet18::ResNet18(int64_t num_classes) : num_classes(num_classes) {
  ANVIL_CHECK(num_classes >= 1, ValueError, "ResNet18: expected num_classes >= 1, got ",
              num_classes);
  c = register_module("c", std::make_shared<Conv2d>(3, 64, 3, 1, 1, 1, 1, /*bias=*/false));
  b = register_module("b", std::make_shared<BatchNorm2d>(64));
  layers = register_module("layers", std::make_shared<Sequential>());
  struct Cfg {
    int64_t in, out, stride;
  };
  for (Cfg k : {Cfg{64, 64, 1}, Cfg{64, 64, 1}, Cfg{64, 128, 2}, Cfg{128, 128, 1}, Cfg{128, 256, 2},
                Cfg{256, 256, 1}, Cfg{256, 512, 2}, Cfg{512, 512, 1}})
    layers->push_back(std::make_shared<BasicBlock>(k.in, k.out, k.stride));
  fc = register_module("fc", std::make_shared<Linear>(512, num_classes));
}

Tensor ResNet18::forward(const Tensor& x) {
  ANVIL_CHECK(x.defined() && x.dim() == 4 && x.size(1) == 3, ShapeError,
              "ResNet18::forward: expected input [N, 3, H, W], got ",
              x.defined() ? "shape " + to_string(x.shape()) : "an undefined tensor");
  Tensor y = b->forward_relu(c->forward(x));
  y = layers->forward(y);
  return fc->forward(adaptive_avg_pool2d(y, {1, 1}).flatten(1));
}

std::string ResNet18::extra_repr() const { return detail::cat("num_classes=", num_classes); }

}  // namespace anvil::nn
