// Where a tensor lives: a kind (CPU or CUDA) and an index.
#pragma once
#include <cstdint>
#include <string>

namespace anvil {

enum class DeviceKind : uint8_t { CPU = 0, CUDA = 1 };
inline constexpr int kNumDeviceKinds = 2;

struct Device {
  DeviceKind kind = DeviceKind::CPU;
  int index = 0;

  Device() = default;
  Device(DeviceKind k, int i = 0) : kind(k), index(i) {}  // NOLINT: Device(kCUDA) reads well
  // Parses "cpu", "cuda", "cuda:1". Throws DeviceError for anything else.
  explicit Device(const std::string& spec);

  bool is_cpu() const { return kind == DeviceKind::CPU; }
  bool is_cuda() const { return kind == DeviceKind::CUDA; }
  std::string str() const;  // "cpu", "cuda:0"
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

inline const Device kCPU{DeviceKind::CPU, 0};
inline const Device kCUDA{DeviceKind::CUDA, 0};

const char* device_kind_name(DeviceKind k);

// Number of usable CUDA devices (0 in a build without CUDA or on a machine without a GPU).
int cuda_device_count();
inline bool cuda_is_available() { return cuda_device_count() > 0; }

// Waits until the work the calling thread queued on the current CUDA device is done, then
// raises the first error a kernel found in its input since the last synchronisation (an index
// out of range, a zero integer divisor, a bad cross-entropy target) as the IndexError or
// ValueError the CPU raises for it, and clears it. CUDA ops do not wait for their kernels, so
// such errors surface here, or at the next copy to the host (item(), to(kCPU)), not at the op.
// Does nothing without a CUDA device.
void cuda_synchronize();

}  // namespace anvil
