// Host memory: 64-byte aligned so that SIMD loads and OpenBLAS never straddle a cache line.
#include <cstdlib>
#include <new>

#include "anvil/core/allocator.h"

namespace anvil::cpu {
namespace {

class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes, int) override {
    if (nbytes == 0) return nullptr;
    void* p = std::aligned_alloc(64, (nbytes + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void deallocate(void* p, size_t, int) override { std::free(p); }
};

CpuAllocator g_cpu_allocator;
const bool g_registered = (register_allocator(DeviceKind::CPU, &g_cpu_allocator), true);

}  // namespace
}  // namespace anvil::cpu
