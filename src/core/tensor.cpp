#include "anvil/core/tensor.h"

#include "anvil/autograd/node.h"

namespace anvil {
namespace {
const TensorImpl& checked(const std::shared_ptr<TensorImpl>& p) {
  if (!p) throw Error("Tensor: the tensor is undefined (e.g. a gradient that was never computed)");
  return *p;
}
}  // namespace

Tensor Tensor::empty(const Shape& shape, TensorOptions opts) {
  for (auto d : shape)
    ANVIL_CHECK(d >= 0, ValueError, "empty: negative dimension in shape ", to_string(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(size_t(anvil::numel(shape)) * dtype_size(opts.dtype_),
                                            opts.device_);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = opts.dtype_;
  Tensor t(std::move(impl));
  if (opts.requires_grad_) t.requires_grad_(true);
  return t;
}

Tensor Tensor::empty(const Shape& shape, TensorOptions opts, MemoryFormat format) {
  Tensor t = empty(shape, opts);
  if (format == MemoryFormat::ChannelsLast) t.impl_->strides = channels_last_strides(shape);
  return t;
}

Tensor Tensor::make_view(std::shared_ptr<Storage> storage, Shape shape, Strides strides,
                         int64_t offset, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

const Shape& Tensor::shape() const { return checked(impl_).shape; }
const Strides& Tensor::strides() const { return checked(impl_).strides; }
int64_t Tensor::offset() const { return checked(impl_).offset; }
DType Tensor::dtype() const { return checked(impl_).dtype; }
Device Tensor::device() const { return checked(impl_).storage->device(); }
const std::shared_ptr<Storage>& Tensor::storage() const { return checked(impl_).storage; }
int64_t Tensor::numel() const { return anvil::numel(shape()); }

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  const auto& im = checked(impl_);
  int64_t expected = 1;
  for (int64_t i = int64_t(im.shape.size()) - 1; i >= 0; --i) {
    if (im.shape[i] == 1) continue;
    if (im.strides[i] != expected) return false;
    expected *= im.shape[i];
  }
  return true;
}

bool Tensor::is_contiguous(MemoryFormat format) const {
  if (format == MemoryFormat::Contiguous) return is_contiguous();
  const auto& im = checked(impl_);
  if (im.shape.size() != 4) return false;
  const Strides expected = channels_last_strides(im.shape);
  for (size_t i = 0; i < 4; ++i)
    if (im.shape[i] != 1 && im.strides[i] != expected[i]) return false;
  return true;
}

MemoryFormat Tensor::suggest_memory_format() const {
  return is_contiguous(MemoryFormat::ChannelsLast) && !is_contiguous() ? MemoryFormat::ChannelsLast
                                                                      : MemoryFormat::Contiguous;
}

void* Tensor::data_ptr() const {
  const auto& im = checked(impl_);
  char* base = static_cast<char*>(im.storage->data());
  return base ? base + im.offset * int64_t(dtype_size(im.dtype)) : nullptr;
}

Scalar Tensor::item() const {
  ANVIL_CHECK(numel() == 1, ValueError, "item: expected a tensor with one element, got shape ",
              to_string(shape()));
  Tensor c = device().is_cpu() ? *this : to(kCPU);
  Scalar s;
  ANVIL_DISPATCH_ALL(c.dtype(), "item", [&] { s = Scalar(*static_cast<scalar_t*>(c.data_ptr())); });
  return s;
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(kCPU).to(dtype_v<T>).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;
template std::vector<float16> Tensor::to_vector<float16>() const;
template std::vector<bfloat16> Tensor::to_vector<bfloat16>() const;
template <>
std::vector<bool> Tensor::to_vector<bool>() const {
  auto bytes = to(kBool).to_vector<uint8_t>();  // same bytes, as uint8
  return std::vector<bool>(bytes.begin(), bytes.end());
}

// ---- autograd ----
bool Tensor::requires_grad() const { return checked(impl_).requires_grad; }
bool Tensor::is_leaf() const { return checked(impl_).grad_fn == nullptr; }
const Tensor& Tensor::grad() const { return checked(impl_).grad; }
void Tensor::set_grad(const Tensor& g) {
  checked(impl_);
  if (g.defined())
    ANVIL_CHECK(g.shape() == shape(), ShapeError, "set_grad: gradient shape ", to_string(g.shape()),
                " does not match tensor shape ", to_string(shape()));
  impl_->grad = g;
}
const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const { return checked(impl_).grad_fn; }
void Tensor::set_grad_fn(std::shared_ptr<autograd::Node> fn) {
  checked(impl_);
  impl_->grad_fn = std::move(fn);
  impl_->requires_grad = impl_->grad_fn != nullptr || impl_->requires_grad;
}

Tensor& Tensor::requires_grad_(bool r) {
  checked(impl_);
  ANVIL_CHECK(is_leaf(), AutogradError,
              "requires_grad_: only leaf tensors can change requires_grad (this one was computed "
              "by ", impl_->grad_fn->name(), "); use detach() first");
  ANVIL_CHECK(!r || is_floating(dtype()), DTypeError,
              "requires_grad_: only floating-point tensors can require gradients, got ",
              dtype_name(dtype()));
  impl_->requires_grad = r;
  return *this;
}

void Tensor::retain_grad() {
  checked(impl_);
  if (is_leaf()) return;  // leaves keep their gradient anyway
  impl_->retains_grad = true;
  impl_->grad_fn->retained = impl_;
}
bool Tensor::retains_grad() const { return checked(impl_).retains_grad; }

void Tensor::set_data(const Tensor& other) const {
  checked(impl_);
  const auto& o = checked(other.impl_ptr());
  ANVIL_CHECK(!impl_->requires_grad || is_floating(o.dtype), DTypeError,
              "set_data: a tensor that requires grad needs floating-point data, got ",
              dtype_name(o.dtype));
  impl_->storage = o.storage;
  impl_->shape = o.shape;
  impl_->strides = o.strides;
  impl_->offset = o.offset;
  impl_->dtype = o.dtype;
  const Tensor& g = impl_->grad;
  if (g.defined() && (g.shape() != o.shape || g.dtype() != o.dtype ||
                      g.device() != o.storage->device()))
    impl_->grad = Tensor();
}

Tensor Tensor::detach() const {
  const auto& im = checked(impl_);
  return make_view(im.storage, im.shape, im.strides, im.offset, im.dtype);
}

}  // namespace anvil
