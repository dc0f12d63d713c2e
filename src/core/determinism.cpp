#include "anvil/core/determinism.h"

#include <atomic>

namespace anvil {
namespace {
std::atomic<bool> g_deterministic{false};
}  // namespace

void use_deterministic_algorithms(bool on) { g_deterministic.store(on); }
bool are_deterministic_algorithms_enabled() { return g_deterministic.load(); }

}  // namespace anvil
