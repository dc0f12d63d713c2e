#include "ops/layout.h"

namespace anvil::ops {
namespace {

bool is_channels_last_only(const Tensor& t) {
  return t.is_contiguous(MemoryFormat::ChannelsLast) && !t.is_contiguous();
}

bool is_broadcast_element(const Tensor& t) {
  for (int64_t s : t.strides())
    if (s != 0) return false;
  return true;
}

}  // namespace

MemoryFormat suggest_memory_format(const std::vector<const Tensor*>& operands,
                                   const Shape& shape) {
  for (const Tensor* t : operands)
    if (t && t->defined() && t->shape() == shape && is_channels_last_only(*t))
      return MemoryFormat::ChannelsLast;
  return MemoryFormat::Contiguous;
}

std::optional<std::vector<Tensor>> flat_channels_last(const std::vector<Tensor>& ts) {
  std::vector<Tensor> flat;
  for (const Tensor& t : ts) {
    const int64_t n = t.numel();
    if (t.is_contiguous(MemoryFormat::ChannelsLast)) {
      flat.push_back(Tensor::make_view(t.storage(), {n}, {1}, t.offset(), t.dtype()));
    } else if (is_broadcast_element(t)) {
      flat.push_back(Tensor::make_view(t.storage(), {n}, {0}, t.offset(), t.dtype()));
    } else {
      return std::nullopt;
    }
  }
  return flat;
}

}  // namespace anvil::ops
