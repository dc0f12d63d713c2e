// A reference-counted block of memory on one device. Tensors view into storages.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>

#include "anvil/core/device.h"

namespace anvil {

class Storage {
 public:
  // Allocates nbytes on `device` through its registered allocator.
  Storage(size_t nbytes, Device device);
  // Borrows memory the caller owns; `release` (may be empty) runs when the last tensor lets go.
  Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  bool owned_ = true;
  std::function<void(void*)> release_;
};

}  // namespace anvil
