// Copies, dtype and device conversions, and in-place fills.
#include "anvil/autograd/grad_mode.h"
#include "anvil/autograd/node.h"
#include "backend/copy_kernels.h"
#include "ops/checks.h"
#include "ops/layout.h"

namespace anvil {
namespace {

// Cross-device copies run on the non-CPU side, which knows both memories.
Device copy_device(const Tensor& dst, const Tensor& src) {
  return dst.device().is_cpu() ? src.device() : dst.device();
}

Tensor copy_to(const Tensor& src, Device device, DType dtype,
               MemoryFormat format = MemoryFormat::Contiguous) {
  const TensorOptions options = TensorOptions(dtype).device(device);
  if (format == MemoryFormat::ChannelsLast) {
    Tensor out = Tensor::empty(src.shape(), options, format);
    if (auto flat = ops::flat_channels_last({out, src})) {  // a straight run over memory
      backend::copy_kernels[copy_device(out, src)]((*flat)[0], (*flat)[1]);
    } else {
      backend::copy_kernels[copy_device(out, src)](out, src);
    }
    return out;
  }
  Tensor out = Tensor::empty(src.shape(), options);
  backend::copy_kernels[copy_device(out, src)](out, src);
  return out;
}

Tensor record_copy(const Tensor& out, const Tensor& src) {
  return autograd::record("CloneBackward", out, {src},
                          [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
}

}  // namespace

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::contiguous(MemoryFormat format) const {
  if (format == MemoryFormat::Contiguous) return contiguous();
  ANVIL_CHECK(dim() == 4, ShapeError,
              "contiguous: channels_last needs a 4-D [N, C, H, W] tensor, got shape ",
              to_string(shape()));
  if (is_contiguous(format)) return *this;
  return record_copy(copy_to(*this, device(), dtype(), format), *this);
}

Tensor Tensor::clone() const { return record_copy(copy_to(*this, device(), dtype()), *this); }

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  // A channels-last tensor stays channels-last (autocast casts activations this way).
  Tensor out = copy_to(*this, device(), dt, suggest_memory_format());
  if (!is_floating(dt)) return out;  // integer results carry no gradient
  // The engine casts the gradient back to the input's dtype.
  return autograd::record("ToCopyBackward", out, {*this},
                          [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
}

Tensor Tensor::to(Device dev) const { return to(dev, dtype()); }

Tensor Tensor::to(Device dev, DType dt) const {
  if (dev == device()) return to(dt);
  Tensor out = copy_to(*this, dev, dt);
  if (!is_floating(dt)) return out;
  Device back = device();
  return autograd::record("ToCopyBackward", out, {*this},
                          [back](const Tensor& g) -> std::vector<Tensor> { return {g.to(back)}; });
}

const Tensor& Tensor::copy_(const Tensor& src) const {
  ops::check_inplace(*this, "copy_");
  Tensor s = src.shape() == shape() ? src : src.expand(shape());
  backend::copy_kernels[copy_device(*this, s)](*this, s);
  return *this;
}

const Tensor& Tensor::fill_(Scalar value) const {
  ops::check_inplace(*this, "fill_");
  backend::fill_kernels[device()](*this, value);
  return *this;
}

const Tensor& Tensor::zero_() const { return fill_(0); }

}  // namespace anvil
