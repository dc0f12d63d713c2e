#include "anvil/core/device.h"

#include "anvil/core/error.h"

namespace anvil {

const char* device_kind_name(DeviceKind k) { return k == DeviceKind::CPU ? "cpu" : "cuda"; }

Device::Device(const std::string& spec) {
  if (spec == "cpu") return;
  if (spec.rfind("cuda", 0) == 0) {
    kind = DeviceKind::CUDA;
    if (spec.size() == 4) return;
    if (spec[4] == ':' && spec.size() > 5 &&
        spec.find_first_not_of("0123456789", 5) == std::string::npos) {
      index = std::stoi(spec.substr(5));
      return;
    }
  }
  throw DeviceError("Device: expected 'cpu', 'cuda' or 'cuda:N', got '" + spec + "'");
}

namespace detail {
// Set by the CUDA backend when it is linked in; absent, there are no CUDA devices.
int (*cuda_device_count_hook)() = nullptr;
void (*cuda_synchronize_hook)() = nullptr;
}  // namespace detail

int cuda_device_count() {
  return detail::cuda_device_count_hook ? detail::cuda_device_count_hook() : 0;
}

void cuda_synchronize() {
  if (detail::cuda_synchronize_hook) detail::cuda_synchronize_hook();
}

std::string Device::str() const {
  return is_cpu() ? "cpu" : "cuda:" + std::to_string(index);
}

}  // namespace anvil
