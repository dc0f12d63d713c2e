#include "backend/cuda/scalar_elementwise.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace anvil::cuda {
namespace {

bool from_environment() {
  const char* v = std::getenv("ANVIL_CUDA_SCALAR_ELEMENTWISE");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

std::atomic<bool> g_scalar{from_environment()};

}  // namespace

void set_scalar_elementwise(bool on) { g_scalar.store(on, std::memory_order_relaxed); }
bool scalar_elementwise() { return g_scalar.load(std::memory_order_relaxed); }

}  // namespace anvil::cuda
