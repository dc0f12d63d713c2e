// The public TF32 switch: forwards to the CUDA backend's when it is linked in.
#include "anvil/amp/precision.h"

#include <atomic>

namespace anvil {
namespace detail {
void (*set_allow_tf32_hook)(bool) = nullptr;
bool (*allow_tf32_hook)() = nullptr;
}  // namespace detail

namespace {
std::atomic<bool> g_allow_tf32{false};  // without the CUDA backend: remembered only
}

void set_allow_tf32(bool allow) {
  if (detail::set_allow_tf32_hook)
    detail::set_allow_tf32_hook(allow);
  else
    g_allow_tf32.store(allow);
}

bool allow_tf32() {
  return detail::allow_tf32_hook ? detail::allow_tf32_hook() : g_allow_tf32.load();
}

}  // namespace anvil
