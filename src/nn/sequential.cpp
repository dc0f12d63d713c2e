#include "anvil/nn/sequential.h"

#include <string>

namespace anvil::nn {

Sequential::Sequential(const std::vector<ModulePtr>& modules) {
  for (const auto& m : modules) push_back(m);
}

Sequential& Sequential::push_back(ModulePtr m) {
  ANVIL_CHECK(m != nullptr, ValueError, "Sequential::push_back: module ", size(), " is null");
  add_child(std::to_string(size()), std::move(m));
  return *this;
}

ModulePtr Sequential::operator[](int64_t i) const {
  const int64_t n = size();
  ANVIL_CHECK(i >= -n && i < n, IndexError, "Sequential::operator[]: index ", i,
              " is out of range for ", n, " modules");
  return named_children()[size_t(i < 0 ? i + n : i)].second;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& [name, m] : named_children()) y = m->forward(y);
  return y;
}

}  // namespace anvil::nn
