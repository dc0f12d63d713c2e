// ResNet-18 for 32x32 images (the CIFAR variant: a 3x3 stem, no max pool), with PyTorch's
// state-dict names, so the weights of this torch model load 1:1 and back:
//
//   class Block(nn.Module):       # c1, b1, c2, b2, sc
//   class ResNet18(nn.Module):    # c, b, layers.0 ... layers.7, fc
//
// (/work/shared/bench/torch_reference.py). Keys read "c.weight", "b.running_mean",
// "layers.0.c1.weight", "layers.2.sc.0.weight", "layers.2.sc.1.num_batches_tracked",
// "fc.weight", ... Also registered as "resnet18" (nn/registry.h), args {"num_classes": 10}.
#pragma once
#include <memory>

#include "anvil/nn/conv.h"
#include "anvil/nn/linear.h"
#include "anvil/nn/normalization.h"
#include "anvil/nn/sequential.h"

namespace anvil::nn {

// relu(b2(c2(relu(b1(c1(x))))) + sc(x)), with c1 a 3x3 conv of `stride` and c2 a 3x3 conv,
// both without bias. The shortcut sc is conv1x1(stride, no bias) + BatchNorm2d when the block
// changes the stride or the channel count, and an empty Sequential (the identity, with no
// state) otherwise, as in PyTorch.
class BasicBlock : public Module {
 public:
  // Throws ValueError for a non-positive channel count or stride.
  BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride = 1);
  // x [N, in_channels, H, W] -> [N, out_channels, ceil(H / stride), ceil(W / stride)].
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t in_channels, out_channels, stride;
  std::shared_ptr<Conv2d> c1, c2;
  std::shared_ptr<BatchNorm2d> b1, b2;
  std::shared_ptr<Sequential> sc;
};

// conv3x3(3 -> 64) + BatchNorm2d + relu, eight BasicBlocks (64, 64, 128, 128, 256, 256, 512,
// 512 channels; stride 2 entering 128, 256 and 512), global average pool, Linear(512, classes).
// Parameters are initialised as PyTorch's layer defaults (11.2M for 10 classes).
class ResNet18 : public Module {
 public:
  // Throws ValueError for num_classes < 1.
  explicit ResNet18(int64_t num_classes = 10);
  // x [N, 3, H, W] (H, W >= 1; 32x32 as designed) -> logits [N, num_classes].
  // Throws ShapeError for another input shape.
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t num_classes;
  std::shared_ptr<Conv2d> c;
  std::shared_ptr<BatchNorm2d> b;
  std::shared_ptr<Sequential> layers;  // the eight BasicBlocks
  std::shared_ptr<Linear> fc;
};

}  // namespace anvil::nn
