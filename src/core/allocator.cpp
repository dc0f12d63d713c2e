#include "anvil/core/allocator.h"

#include <array>

#include "anvil/core/error.h"

namespace anvil {
namespace {
std::array<Allocator*, kNumDeviceKinds>& registry() {
  static std::array<Allocator*, kNumDeviceKinds> r{};
  return r;
}
}  // namespace

void register_allocator(DeviceKind kind, Allocator* a) { registry()[int(kind)] = a; }

bool has_backend(DeviceKind kind) { return registry()[int(kind)] != nullptr; }

Allocator& allocator_for(DeviceKind kind) {
  Allocator* a = registry()[int(kind)];
  if (!a)
    throw DeviceError(std::string("allocate: this build of anvil has no ") +
                      device_kind_name(kind) + " backend (rebuild with CUDA to use cuda tensors)");
  return *a;
}

}  // namespace anvil
