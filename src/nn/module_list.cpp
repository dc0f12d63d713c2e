#include "anvil/nn/module_list.h"

#include <string>

namespace anvil::nn {

ModuleList::ModuleList(const std::vector<ModulePtr>& modules) {
  for (const auto& m : modules) push_back(m);
}

ModuleList& ModuleList::push_back(ModulePtr m) {
  ANVIL_CHECK(m != nullptr, ValueError, "ModuleList::push_back: module ", size(), " is null");
  add_child(std::to_string(size()), std::move(m));
  return *this;
}

ModulePtr ModuleList::operator[](int64_t i) const {
  const int64_t n = size();
  ANVIL_CHECK(i >= -n && i < n, IndexError, "ModuleList::operator[]: index ", i,
              " is out of range for ", n, " modules");
  return named_children()[size_t(i < 0 ? i + n : i)].second;
}

}  // namespace anvil::nn
