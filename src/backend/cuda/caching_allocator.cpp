// A caching CUDA allocator in the manner of PyTorch's CUDACachingAllocator.
//
// Per device: a small pool (requests <= 1 MiB, carved from 2 MiB segments) and a large pool.
// Free blocks of a pool sit in a std::set ordered by (size, address), so lower_bound is the
// best fit. A block larger than the request is split when the remainder is big enough to be
// useful (small pool: >= 512 B, large pool: >= 1 MiB); a freed block merges with free
// neighbours of its segment (blocks of one segment form a doubly linked list by address).
// All work runs on one stream (stream.h), so a freed block is reusable at once.
//
// CUDA graphs: while a graph is being captured, every allocation on its device comes from the
// graph's private pool (segments of its own), because a replay writes to the addresses the
// capture saw: that memory must never be handed to anything else while the graph lives.
// Blocks freed during the capture go back to the private pool (the capture is in stream order,
// so reuse inside it is safe); a block of the shared pools freed during capture may still be
// read by a replay, so it is held back until the graph is released.
#include "backend/cuda/caching_allocator.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "anvil/core/error.h"
#include "backend/cuda/runtime.h"

namespace anvil::cuda {
namespace {

constexpr size_t kMinBlockSize = 512;             // every size is a multiple of this
constexpr size_t kSmallSize = 1 << 20;            // requests up to this go to the small pool
constexpr size_t kSmallSegment = 2 << 20;         // segment size of the small pool
constexpr size_t kMinLargeAlloc = 10 << 20;       // large requests below this ...
constexpr size_t kLargeSegment = 20 << 20;        // ... share a segment of this size
constexpr size_t kRoundLarge = 2 << 20;           // larger segments are rounded to this
constexpr size_t kMinLargeSplitRemainder = 1 << 20;

struct Block;
struct PrivatePool;

struct BlockLess {
  bool operator()(const Block* a, const Block* b) const;
};
using FreeSet = std::set<Block*, BlockLess>;

struct Block {
  size_t size = 0;
  char* ptr = nullptr;
  bool allocated = false;
  FreeSet* pool = nullptr;  // the pool this block's segment belongs to
  PrivatePool* graph_pool = nullptr;  // the CUDA graph pool owning the segment, if any
  Block* prev = nullptr;    // neighbours within the segment, by address
  Block* next = nullptr;
};

bool BlockLess::operator()(const Block* a, const Block* b) const {
  if (a->size != b->size) return a->size < b->size;
  return std::less<const char*>()(a->ptr, b->ptr);
}

// The memory of one CUDA graph (see the top of the file).
struct PrivatePool {
  FreeSet small, large;
  int64_t segments = 0;           // segments still owned (they outlive release while in use)
  bool released = false;          // the graph is gone: free segments as soon as they empty
  std::vector<Block*> held_back;  // shared-pool blocks freed during the capture
};

// cudaMalloc is "unsafe" during stream capture: it is not a stream operation, so the capture
// would not see it. Here that is intended (the segment belongs to the graph's pool and lives
// as long as the graph), so the calling thread relaxes the capture mode around the call.
class RelaxedCaptureMode {
 public:
  RelaxedCaptureMode() { cudaThreadExchangeStreamCaptureMode(&mode_); }
  ~RelaxedCaptureMode() { cudaThreadExchangeStreamCaptureMode(&mode_); }
  RelaxedCaptureMode(const RelaxedCaptureMode&) = delete;
  RelaxedCaptureMode& operator=(const RelaxedCaptureMode&) = delete;

 private:
  cudaStreamCaptureMode mode_ = cudaStreamCaptureModeRelaxed;
};

size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

std::string human(size_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
  return buf;
}

class DeviceCache {
 public:
  explicit DeviceCache(int device) : device_(device) {}

  void* allocate(size_t nbytes) {
    std::lock_guard<std::mutex> lock(mu_);
    // Sizes this close to the limit cannot be rounded (and cannot exist); report them as OOM.
    if (nbytes > std::numeric_limits<size_t>::max() / 2) throw out_of_memory(nbytes);
    const size_t size = round_up(std::max(nbytes, kMinBlockSize), kMinBlockSize);
    const bool small = size <= kSmallSize;
    FreeSet& pool = capturing_ ? (small ? capturing_->small : capturing_->large)
                               : (small ? small_ : large_);

    Block* block = nullptr;
    Block key;
    key.size = size;
    auto it = pool.lower_bound(&key);
    if (it != pool.end()) {
      block = *it;
      pool.erase(it);
    } else {
      block = new_segment(segment_size(size), pool, nbytes);
    }

    const size_t remainder = block->size - size;
    if (remainder >= (small ? kMinBlockSize : kMinLargeSplitRemainder)) {
      auto* rest = new Block;
      rest->size = remainder;
      rest->ptr = block->ptr + size;
      rest->pool = &pool;
      rest->graph_pool = block->graph_pool;
      rest->prev = block;
      rest->next = block->next;
      if (block->next) block->next->prev = rest;
      block->next = rest;
      block->size = size;
      pool.insert(rest);
    }

    block->allocated = true;
    live_.emplace(block->ptr, block);
    stats_.allocated_bytes += int64_t(block->size);
    stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
    ++stats_.num_allocs;
    return block->ptr;
  }

  void deallocate(void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours: nothing sensible to do in a destructor
    Block* block = it->second;
    live_.erase(it);
    stats_.allocated_bytes -= int64_t(block->size);
    if (capturing_ && !block->graph_pool) {
      // A replay may still read it. It stays marked allocated so that no neighbour merges it.
      capturing_->held_back.push_back(block);
      return;
    }
    block->allocated = false;
    free_block(block);
  }

  // Opens a private pool for the graph `id`: allocations come from it until end_capture().
  void begin_capture(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    ANVIL_CHECK(!capturing_, DeviceError, "CUDA graph capture: cuda:", device_,
                " is already capturing a graph; captures cannot nest");
    auto& p = graph_pools_[id];
    if (!p) p = std::make_unique<PrivatePool>();
    capturing_ = p.get();
  }

  void end_capture() {
    std::lock_guard<std::mutex> lock(mu_);
    capturing_ = nullptr;
  }

  // The graph `id` is gone: its held-back blocks return to the shared pools and its segments
  // go back to the driver as soon as nothing in them is alive.
  void release_pool(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = graph_pools_.find(id);
    if (it == graph_pools_.end()) return;
    PrivatePool* p = it->second.get();
    if (capturing_ == p) capturing_ = nullptr;
    for (Block* b : p->held_back) {
      b->allocated = false;
      free_block(b);
    }
    p->held_back.clear();
    p->released = true;
    std::vector<Block*> whole;  // free segments with nothing alive in them
    for (FreeSet* set : {&p->small, &p->large})
      for (Block* b : *set)
        if (!b->prev && !b->next) whole.push_back(b);
    for (Block* b : whole) {
      b->pool->erase(b);
      release_segment(b);
    }
    drop_pool_if_empty(p);
  }

 private:
  void free_block(Block* block) {
    FreeSet& pool = *block->pool;
    if (Block* prev = block->prev; prev && !prev->allocated) {
      pool.erase(prev);
      prev->size += block->size;
      prev->next = block->next;
      if (block->next) block->next->prev = prev;
      delete block;
      block = prev;
    }
    if (Block* next = block->next; next && !next->allocated) {
      pool.erase(next);
      block->size += next->size;
      block->next = next->next;
      if (next->next) next->next->prev = block;
      delete next;
    }
    if (PrivatePool* p = block->graph_pool; p && p->released && !block->prev && !block->next) {
      release_segment(block);
      drop_pool_if_empty(p);
      return;
    }
    pool.insert(block);
  }

  // cudaFree a whole free segment of a released graph pool (outside any capture).
  void release_segment(Block* block) {
    PrivatePool* p = block->graph_pool;
    DeviceGuard guard(device_);
    check(cudaFree(block->ptr), "cudaFree");
    ++stats_.num_device_frees;
    stats_.reserved_bytes -= int64_t(block->size);
    delete block;
    --p->segments;
  }

  void drop_pool_if_empty(PrivatePool* p) {
    if (p->segments > 0 || !p->released) return;
    for (auto it = graph_pools_.begin(); it != graph_pools_.end(); ++it)
      if (it->second.get() == p) {
        graph_pools_.erase(it);
        return;
      }
  }

 public:
  MemoryStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
  }

  void empty_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    release_cached();
  }

 private:
  static size_t segment_size(size_t size) {
    if (size <= kSmallSize) return kSmallSegment;
    if (size < kMinLargeAlloc) return kLargeSegment;
    return round_up(size, kRoundLarge);
  }

  // cudaMalloc a segment; on out-of-memory, empty the cache and try once more.
  Block* new_segment(size_t bytes, FreeSet& pool, size_t requested) {
    DeviceGuard guard(device_);
    void* p = nullptr;
    cudaError_t err;
    {
      RelaxedCaptureMode relaxed;
      err = cudaMalloc(&p, bytes);
    }
    if (err == cudaErrorMemoryAllocation && !capturing_) {  // cudaFree may not run in a capture
      cudaGetLastError();  // clear the error
      release_cached();
      err = cudaMalloc(&p, bytes);
    }
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      throw out_of_memory(requested);
    }
    check(err, "cudaMalloc");
    ++stats_.num_device_mallocs;
    stats_.reserved_bytes += int64_t(bytes);
    auto* block = new Block;
    block->size = bytes;
    block->ptr = static_cast<char*>(p);
    block->pool = &pool;
    block->graph_pool = capturing_;
    if (capturing_) ++capturing_->segments;
    return block;
  }

  // Frees every segment that is a single free block (no live block in it).
  void release_cached() {
    for (FreeSet* pool : {&small_, &large_}) {
      for (auto it = pool->begin(); it != pool->end();) {
        Block* b = *it;
        if (b->prev || b->next) {
          ++it;
          continue;
        }
        DeviceGuard guard(device_);
        check(cudaFree(b->ptr), "cudaFree");
        ++stats_.num_device_frees;
        stats_.reserved_bytes -= int64_t(b->size);
        it = pool->erase(it);
        delete b;
      }
    }
  }

  DeviceError out_of_memory(size_t requested) const {
    return DeviceError(detail::cat(
        "CUDA out of memory: tried to allocate ", requested, " bytes (", human(requested),
        ") on cuda:", device_, "; ", stats_.allocated_bytes, " bytes (",
        human(size_t(stats_.allocated_bytes)), ") allocated, ", stats_.reserved_bytes,
        " bytes (", human(size_t(stats_.reserved_bytes)), ") reserved by anvil"));
  }

  const int device_;
  std::mutex mu_;
  FreeSet small_, large_;
  std::unordered_map<void*, Block*> live_;
  std::unordered_map<uint64_t, std::unique_ptr<PrivatePool>> graph_pools_;
  PrivatePool* capturing_ = nullptr;
  MemoryStats stats_;
};

class CachingAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes, int device_index) override {
    DeviceCache* cache = device(device_index);
    ANVIL_CHECK(cache, DeviceError, "allocate: cuda:", device_index,
                " is not available (this machine has ", device_count(), " CUDA devices)");
    if (nbytes == 0) return nullptr;
    return cache->allocate(nbytes);
  }

  void deallocate(void* p, size_t, int device_index) override {
    if (!p) return;
    if (DeviceCache* cache = device(device_index)) cache->deallocate(p);
  }

  // The cache of cuda:`index`, or null when there is no such device.
  DeviceCache* device(int index) {
    std::call_once(init_, [this] {
      const int n = device_count();
      for (int i = 0; i < n; ++i) caches_.push_back(std::make_unique<DeviceCache>(i));
    });
    if (index < 0 || index >= int(caches_.size())) return nullptr;
    return caches_[size_t(index)].get();
  }

  void empty_cache() {
    device(0);  // initialise
    for (auto& c : caches_) c->empty_cache();
  }

 private:
  std::once_flag init_;
  std::vector<std::unique_ptr<DeviceCache>> caches_;
};

CachingAllocator& instance() {
  static auto* a = new CachingAllocator;  // leaked on purpose: see the header
  return *a;
}

}  // namespace

Allocator& caching_allocator() { return instance(); }

MemoryStats caching_allocator_stats(int device) {
  DeviceCache* c = instance().device(device);
  return c ? c->stats() : MemoryStats{};
}

void caching_allocator_reset_peak(int device) {
  if (DeviceCache* c = instance().device(device)) c->reset_peak();
}

void caching_allocator_empty_cache() { instance().empty_cache(); }

void caching_allocator_begin_capture(int device, uint64_t graph_id) {
  DeviceCache* c = instance().device(device);
  ANVIL_CHECK(c, DeviceError, "CUDA graph capture: cuda:", device, " is not available");
  c->begin_capture(graph_id);
}

void caching_allocator_end_capture(int device) {
  if (DeviceCache* c = instance().device(device)) c->end_capture();
}

void caching_allocator_release_pool(int device, uint64_t graph_id) {
  if (DeviceCache* c = instance().device(device)) c->release_pool(graph_id);
}

}  // namespace anvil::cuda
