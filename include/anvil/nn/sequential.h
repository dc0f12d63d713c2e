// Sequential: runs its children one after another, as torch.nn.Sequential. Children are
// named "0", "1", ... in order, so parameters read "0.weight", "2.bias", ...
//
//   auto net = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
//       std::make_shared<nn::Linear>(784, 128), std::make_shared<nn::ReLU>(),
//       std::make_shared<nn::Linear>(128, 10)});
#pragma once
#include <vector>

#include "anvil/nn/module.h"

namespace anvil::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(const std::vector<ModulePtr>& modules);
  Sequential(std::initializer_list<ModulePtr> modules)
      : Sequential(std::vector<ModulePtr>(modules)) {}

  // Appends a module, named by its position. Throws ValueError for a null module.
  Sequential& push_back(ModulePtr m);
  Sequential& add(ModulePtr m) { return push_back(std::move(m)); }
  // The i-th module (negative counts from the end); throws IndexError when out of range.
  ModulePtr operator[](int64_t i) const;
  // The i-th module as M; throws ValueError when it is another type.
  template <class M>
  std::shared_ptr<M> at(int64_t i) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[i]);
    ANVIL_CHECK(m != nullptr, ValueError, "Sequential::at: module ", i, " is a ",
                (*this)[i]->name());
    return m;
  }
  int64_t size() const { return int64_t(named_children().size()); }
  bool empty() const { return size() == 0; }

  // Feeds x through every module in order (the identity when empty). A Linear directly followed
  // by a ReLU or a GELU("tanh") runs as one Linear::forward_act call, with the same values; the
  // modules themselves (names, state dict, printing) stay as they are.
  Tensor forward(const Tensor& x) override;
};

}  // namespace anvil::nn
