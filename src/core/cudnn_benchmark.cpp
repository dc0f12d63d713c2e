#include "anvil/core/cudnn_benchmark.h"

#include <atomic>

namespace anvil {
namespace {
std::atomic<bool> g_cudnn_benchmark{false};
}  // namespace

void set_cudnn_benchmark(bool on) { g_cudnn_benchmark.store(on); }
bool cudnn_benchmark_enabled() { return g_cudnn_benchmark.load(); }

}  // namespace anvil
