#include "backend/cuda/pinned_allocator.h"

#include <map>
#include <mutex>
#include <vector>

#include "anvil/core/error.h"
#include "anvil/core/pinned_memory.h"
#include "backend/cuda/runtime.h"

namespace anvil::cuda {
namespace {

struct Block {
  size_t size = 0;
  bool in_use = false;
  cudaEvent_t last_use = nullptr;  // recorded after the last copy that read the block
  bool used = false;               // last_use has been recorded since the block was handed out
};

class PinnedCache {
 public:
  void* allocate(size_t nbytes) {
    const size_t size = round(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    // A free block of this size class whose copies are done.
    auto [first, last] = free_.equal_range(size);
    for (auto it = first; it != last; ++it) {
      Block& b = blocks_.at(it->second);
      if (b.used && cudaEventQuery(b.last_use) != cudaSuccess) {
        cudaGetLastError();  // cudaErrorNotReady is not an error to keep
        continue;
      }
      void* p = it->second;
      free_.erase(it);
      b.in_use = true;
      b.used = false;
      return p;
    }
    void* p = nullptr;
    check(cudaHostAlloc(&p, size, cudaHostAllocDefault), "cudaHostAlloc");
    Block& b = blocks_[p];
    b.size = size;
    b.in_use = true;
    check(cudaEventCreateWithFlags(&b.last_use, cudaEventDisableTiming), "cudaEventCreate");
    return p;
  }

  void free(void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = blocks_.find(p);
    if (it == blocks_.end() || !it->second.in_use) return;
    it->second.in_use = false;
    free_.emplace(it->second.size, p);
  }

  bool contains(const void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    return find(p) != nullptr;
  }

  void record_use(const void* p, cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(mu_);
    if (Block* b = find(p)) {
      check(cudaEventRecord(b->last_use, stream), "cudaEventRecord");
      b->used = true;
    }
  }

 private:
  // Sizes in powers of two from 4 KiB, so that batches of one shape reuse one block.
  static size_t round(size_t n) {
    size_t s = 4096;
    while (s < n) s <<= 1;
    return s;
  }

  // The block whose range holds `p`, if any (a view's pointer may be inside a block).
  Block* find(const void* p) {
    auto it = blocks_.upper_bound(const_cast<void*>(p));
    if (it == blocks_.begin()) return nullptr;
    --it;
    const char* base = static_cast<const char*>(it->first);
    return static_cast<const char*>(p) < base + it->second.size ? &it->second : nullptr;
  }

  std::mutex mu_;
  std::map<void*, Block> blocks_;      // every block, by address; never returned to the driver
  std::multimap<size_t, void*> free_;  // free blocks by size
};

PinnedCache& cache() {
  static auto* c = new PinnedCache;  // outlives tensors released during static destruction
  return *c;
}

const bool g_registered = [] {
  detail::pinned_allocate_hook = &pinned_allocate;
  detail::pinned_free_hook = &pinned_free;
  detail::is_pinned_hook = &is_pinned;
  return true;
}();

}  // namespace

void* pinned_allocate(size_t nbytes) { return cache().allocate(nbytes); }
void pinned_free(void* p) { cache().free(p); }
bool is_pinned(const void* p) { return p && cache().contains(p); }
void pinned_record_use(const void* p, cudaStream_t stream) { cache().record_use(p, stream); }

}  // namespace anvil::cuda
