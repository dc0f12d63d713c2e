// Tensor: a typed, strided view of a Storage on a device, with autograd metadata.
//
// Tensors are handles: copying a Tensor shares the data (as in PyTorch). Views (reshape,
// permute, narrow, expand, ...) share storage with their base; `contiguous()` and `clone()`
// copy. Element offsets and strides are counted in elements, not bytes.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "anvil/core/device.h"
#include "anvil/core/dtype.h"
#include "anvil/core/error.h"
#include "anvil/core/memory_format.h"
#include "anvil/core/scalar.h"
#include "anvil/core/shape.h"
#include "anvil/core/storage.h"

namespace anvil {

namespace autograd {
class Node;
}

// dtype, device and requires_grad for creation functions: zeros({2, 3}, kFloat64),
// ones({4}, TensorOptions().device(kCUDA).requires_grad(true)).
struct TensorOptions {
  DType dtype_ = kFloat32;
  Device device_ = kCPU;
  bool requires_grad_ = false;
  bool dtype_set_ = false;  // false: the creation function may pick (tensor<T> keeps T)

  TensorOptions() = default;
  TensorOptions(DType t) : dtype_(t), dtype_set_(true) {}  // NOLINT
  TensorOptions(Device d) : device_(d) {}                  // NOLINT
  TensorOptions dtype(DType t) const {
    auto o = *this;
    o.dtype_ = t;
    o.dtype_set_ = true;
    return o;
  }
  TensorOptions device(Device d) const { auto o = *this; o.device_ = d; return o; }
  TensorOptions requires_grad(bool r = true) const { auto o = *this; o.requires_grad_ = r; return o; }
};

struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (e.g. a missing gradient)
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  // A new tensor of `shape` with uninitialised memory.
  static Tensor empty(const Shape& shape, TensorOptions opts = {});
  // The same in `format` (ChannelsLast needs 4 dims; throws ShapeError otherwise).
  static Tensor empty(const Shape& shape, TensorOptions opts, MemoryFormat format);
  // A view of `storage` with the given geometry.
  static Tensor make_view(std::shared_ptr<Storage> storage, Shape shape, Strides strides,
                          int64_t offset, DType dtype);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& sizes() const { return shape(); }
  int64_t size(int64_t dim) const;  // negative dims count from the end
  const Strides& strides() const;
  int64_t stride(int64_t dim) const;
  int64_t offset() const;
  int64_t dim() const { return int64_t(shape().size()); }
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  TensorOptions options() const { return TensorOptions(dtype()).device(device()); }
  size_t element_size() const { return dtype_size(dtype()); }
  bool is_contiguous() const;
  // Dense in `format`'s order (size-1 dims may have any stride, as in PyTorch).
  bool is_contiguous(MemoryFormat format) const;
  // The layout ops keep for this tensor: ChannelsLast when it is dense channels-last and not
  // also row-major (a [N, 1, H, W] or [N, C, 1, 1] tensor is both: Contiguous).
  MemoryFormat suggest_memory_format() const;
  bool is_floating_point() const { return is_floating(dtype()); }
  const std::shared_ptr<Storage>& storage() const;
  // Address of the first element (storage base + offset).
  void* data_ptr() const;
  template <class T> T* data() const;  // checks that T matches dtype()

  // The single value of a one-element tensor (copies from the device if needed).
  Scalar item() const;
  template <class T> T item() const { return item().to<T>(); }
  // All elements in row-major order, converted to T (copies from the device if needed).
  template <class T> std::vector<T> to_vector() const;

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& requires_grad_(bool r = true);  // only on leaves
  bool is_leaf() const;
  const Tensor& grad() const;  // undefined until a backward pass reaches this tensor
  void set_grad(const Tensor& g);
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  void set_grad_fn(std::shared_ptr<autograd::Node> fn);
  // Keeps .grad on a non-leaf tensor after backward (torch.Tensor.retain_grad).
  void retain_grad();
  bool retains_grad() const;
  // Back-propagates from this tensor; `gradient` defaults to ones for a one-element tensor.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;  // shares data, no history
  // Points this tensor, and every handle to it, at `other`'s data, shape and dtype while keeping
  // its autograd identity (torch's `param.data = other`): how modules move their parameters
  // between devices and dtypes. A gradient that no longer fits is dropped.
  void set_data(const Tensor& other) const;

  // ---- views (share storage; differentiable) ----
  Tensor view(const Shape& shape) const;     // requires compatible strides; -1 infers a dim
  Tensor reshape(const Shape& shape) const;  // view when possible, else copies
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const;  // 2-D transpose
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;  // removes `dim`
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor expand(const Shape& shape) const;  // -1 keeps a dim; new leading dims allowed
  Tensor expand_as(const Tensor& other) const { return expand(other.shape()); }

  // ---- copies and conversions ----
  Tensor contiguous() const;  // self if already contiguous
  Tensor contiguous(MemoryFormat format) const;  // self if already dense in `format`
  Tensor clone() const;
  Tensor to(DType dtype) const;  // self if already of that dtype
  Tensor to(Device device) const;
  Tensor to(Device device, DType dtype) const;
  Tensor cpu() const { return to(kCPU); }
  // A copy in page-locked host memory (self if already there), from which copies to a CUDA
  // device run asynchronously (anvil/core/pinned_memory.h). Throws DeviceError for a tensor
  // not on the CPU or on a machine without a CUDA device.
  Tensor pin_memory() const;
  bool is_pinned() const;
  Tensor cuda(int index = 0) const { return to(Device(DeviceKind::CUDA, index)); }

  // ---- in place (not recorded by autograd; refused on tensors that need grad) ----
  // const like PyTorch's: a Tensor is a handle, and these change the data, not the handle.
  const Tensor& zero_() const;
  const Tensor& fill_(Scalar value) const;
  const Tensor& copy_(const Tensor& src) const;  // broadcasts src, converts dtype and device

  std::string str() const;  // as PyTorch prints it: tensor([[1., 2.], ...])
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Strides strides;
  int64_t offset = 0;
  DType dtype = kFloat32;
  // autograd
  bool requires_grad = false;
  bool retains_grad = false;
  Tensor grad;
  std::shared_ptr<autograd::Node> grad_fn;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

template <class T> T* Tensor::data() const {
  if (dtype_v<T> != dtype())
    throw DTypeError(std::string("Tensor::data: asked for ") + dtype_name(dtype_v<T>) +
                     " but the tensor is " + dtype_name(dtype()));
  return static_cast<T*>(data_ptr());
}

}  // namespace anvil
