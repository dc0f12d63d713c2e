// Per-device kernel tables. An op looks up its kernel by the device of its operands; each
// backend fills in its entries at load time, so a new backend adds kernels without touching
// op code.
#pragma once
#include <array>

#include "anvil/core/device.h"
#include "anvil/core/error.h"

namespace anvil::backend {

template <class Fn>
class KernelTable {
 public:
  explicit constexpr KernelTable(const char* op) : op_(op) {}
  void set(DeviceKind kind, Fn* fn) { fns_[int(kind)] = fn; }
  bool has(DeviceKind kind) const { return fns_[int(kind)] != nullptr; }
  Fn* operator[](Device d) const {
    Fn* f = fns_[int(d.kind)];
    if (!f)
      throw DeviceError(detail::cat(op_, ": no kernel for device ", d.str(),
                                    " in this build of anvil"));
    return f;
  }
  const char* op() const { return op_; }

 private:
  const char* op_;
  std::array<Fn*, kNumDeviceKinds> fns_{};
};

// Fills a table entry during static initialisation:
//   static const Registrar r(binary_kernels, DeviceKind::CPU, &binary_cpu);
struct Registrar {
  template <class Fn>
  Registrar(KernelTable<Fn>& table, DeviceKind kind, Fn* fn) {
    table.set(kind, fn);
  }
};

}  // namespace anvil::backend

#define ANVIL_CONCAT_INNER(a, b) a##b
#define ANVIL_CONCAT(a, b) ANVIL_CONCAT_INNER(a, b)
// Registers `fn` as the `kind` kernel of `table` (kind: CPU or CUDA).
#define ANVIL_REGISTER_KERNEL(table, kind, fn)                                \
  static const ::anvil::backend::Registrar ANVIL_CONCAT(anvil_reg_, __LINE__)( \
      table, ::anvil::DeviceKind::kind, fn)
