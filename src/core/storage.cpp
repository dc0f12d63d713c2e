#include "anvil/core/storage.h"

#include "anvil/core/allocator.h"

namespace anvil {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = allocator_for(device.kind).allocate(nbytes, device.index);
}

Storage::Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> release)
    : data_(data), nbytes_(nbytes), device_(device), owned_(false), release_(std::move(release)) {}

Storage::~Storage() {
  if (owned_) {
    if (data_) allocator_for(device_.kind).deallocate(data_, nbytes_, device_.index);
  } else if (release_) {
    release_(data_);
  }
}

}  // namespace anvil
