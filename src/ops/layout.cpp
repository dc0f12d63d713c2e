#include "ops/layout.h"

namespace anvil::ops {
namespace {

bool is_broadcast_element(const Tensor& t) {
  for (int64_t s : t.strides())
    if (s != 0) return false;
  return true;
}

}  // namespace

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

Tensor elementwise_result(const Shape& shape, TensorOptions options, const std::vector<Tensor>& in,
                          const ElementwiseKernel& kernel) {
  bool channels_last = false;
  for (const Tensor& t : in)
    if (t.shape() == shape && t.suggest_memory_format() == MemoryFormat::ChannelsLast)
      channels_last = true;
  if (channels_last) {
    Tensor out = Tensor::empty(shape, options, MemoryFormat::ChannelsLast);
    std::vector<Tensor> all{out};
    all.insert(all.end(), in.begin(), in.end());
    if (auto flat = flat_channels_last(all)) {
      kernel((*flat)[0], std::vector<Tensor>(flat->begin() + 1, flat->end()));
      return out;
    }
  }
  Tensor out = Tensor::empty(shape, options);
  kernel(out, in);
  return out;
}

}  // namespace anvil::ops
