#include "anvil/nn/sequential.h"

#include <optional>
#include <string>
#include <typeinfo>

#include "anvil/nn/activation.h"
#include "anvil/nn/conv.h"
#include "anvil/nn/linear.h"

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

namespace {

// The activation a module applies, when linear_act can fuse it into a preceding Linear. Exact
// types only: a subclass may override forward.
std::optional<Activation> fusable_activation(const Module& m) {
  if (typeid(m) == typeid(ReLU)) return Activation::Relu;
  if (typeid(m) == typeid(GELU) && static_cast<const GELU&>(m).approximate == "tanh")
    return Activation::GeluTanh;
  return std::nullopt;
}

}  // namespace

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  const auto& children = named_children();
  for (size_t i = 0; i < children.size(); ++i) {
    Module& m = *children[i].second;
    if (typeid(m) == typeid(Linear) && i + 1 < children.size()) {
      if (auto act = fusable_activation(*children[i + 1].second)) {
        y = static_cast<Linear&>(m).forward_act(y, *act);
        ++i;  // the activation module ran inside the product
        continue;
      }
    }
    if (typeid(m) == typeid(Conv2d) && i + 1 < children.size() &&
        fusable_activation(*children[i + 1].second) == Activation::Relu) {
      y = static_cast<Conv2d&>(m).forward_relu(y);
      ++i;  // the ReLU ran in the convolution's bias pass
      continue;
    }
    y = m.forward(y);
  }
  return y;
}

}  // namespace anvil::nn
