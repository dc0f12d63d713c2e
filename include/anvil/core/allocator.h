// Device memory allocators, one per device kind. Backends register theirs at load time.
#pragma once
#include <cstddef>
#include <memory>

#include "anvil/core/device.h"

namespace anvil {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes, int device_index) = 0;
  virtual void deallocate(void* p, size_t nbytes, int device_index) = 0;
};

// The allocator registered for `kind`; throws DeviceError when the backend is absent.
Allocator& allocator_for(DeviceKind kind);
void register_allocator(DeviceKind kind, Allocator* a);
bool has_backend(DeviceKind kind);

}  // namespace anvil
