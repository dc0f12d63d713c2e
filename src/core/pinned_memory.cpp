#include "anvil/core/pinned_memory.h"

#include <cstring>

#include "anvil/core/error.h"
#include "anvil/core/storage.h"

namespace anvil {
namespace detail {
void* (*pinned_allocate_hook)(size_t nbytes) = nullptr;
void (*pinned_free_hook)(void* p) = nullptr;
bool (*is_pinned_hook)(const void* p) = nullptr;
}  // namespace detail

bool pinned_memory_available() {
  return detail::pinned_allocate_hook != nullptr && cuda_device_count() > 0;
}

Tensor Tensor::pin_memory() const {
  ANVIL_CHECK(defined(), ValueError, "pin_memory: the tensor is undefined");
  ANVIL_CHECK(device().is_cpu(), DeviceError, "pin_memory: expected a CPU tensor, got one on ",
              device().str());
  if (is_pinned()) return *this;
  ANVIL_CHECK(pinned_memory_available(), DeviceError,
              "pin_memory: page-locked memory needs a CUDA device, and this machine has none");
  Tensor src = contiguous();
  const size_t nbytes = size_t(numel()) * element_size();
  void* p = detail::pinned_allocate_hook(nbytes > 0 ? nbytes : 1);
  auto storage = std::make_shared<Storage>(p, nbytes, kCPU, detail::pinned_free_hook);
  if (nbytes > 0) std::memcpy(p, src.data_ptr(), nbytes);
  return Tensor::make_view(storage, shape(), contiguous_strides(shape()), 0, dtype());
}

bool Tensor::is_pinned() const {
  return defined() && device().is_cpu() && detail::is_pinned_hook &&
         detail::is_pinned_hook(data_ptr());
}

}  // namespace anvil
