// ModuleList: holds child modules by position, as torch.nn.ModuleList. Children are named "0",
// "1", ... in order, so a list registered as "layers" gives the keys "layers.0.weight", ... It
// has no forward of its own: the module that owns it decides how its children run.
//
//   auto layers = register_module("layers", std::make_shared<nn::ModuleList>());
//   for (int i = 0; i < 6; ++i) layers->push_back(std::make_shared<Block>());
//   for (auto& m : layers->children()) x = (*m)(x);
#pragma once
#include <vector>

#include "anvil/nn/module.h"

namespace anvil::nn {

class ModuleList : public Module {
 public:
  ModuleList() = default;
  explicit ModuleList(const std::vector<ModulePtr>& modules);

  // Appends a module, named by its position. Throws ValueError for a null module.
  ModuleList& push_back(ModulePtr m);
  ModuleList& append(ModulePtr m) { return push_back(std::move(m)); }
  // The i-th module (negative counts from the end); throws IndexError when out of range.
  ModulePtr operator[](int64_t i) const;
  // The i-th module as M; throws ValueError when it is another type.
  template <class M>
  std::shared_ptr<M> at(int64_t i) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[i]);
    ANVIL_CHECK(m != nullptr, ValueError, "ModuleList::at: module ", i, " is a ",
                (*this)[i]->name());
    return m;
  }
  int64_t size() const { return int64_t(named_children().size()); }
  bool empty() const { return size() == 0; }
};

}  // namespace anvil::nn
