// Counter-based random numbers (Philox-4x32-10, as in cuRAND and PyTorch's CUDA generator).
//
// A Generator is a (seed, offset) pair. Each random op reserves a block of counters and
// element i of its output draws from counter offset + i / 4, lane i % 4. The CPU and CUDA
// backends use the same scheme, so a seed gives the same numbers on both.
#pragma once
#include <array>
#include <cstdint>
#include <mutex>

#include "anvil/core/device.h"

namespace anvil {

// One Philox-4x32-10 block: four 32-bit outputs for a 128-bit counter and 64-bit key.
std::array<uint32_t, 4> philox4x32(uint64_t counter_lo, uint64_t counter_hi, uint64_t key);

// A uniform float in [0, 1) from 24 random bits, as PyTorch makes them.
inline float uint32_to_uniform(uint32_t x) { return float(x >> 8) * (1.0f / 16777216.0f); }
// A uniform double in [0, 1) from 53 random bits (two draws).
inline double uint64_to_uniform(uint32_t hi, uint32_t lo) {
  return double(((uint64_t(hi) << 32) | lo) >> 11) * (1.0 / 9007199254740992.0);
}

class Generator {
 public:
  explicit Generator(uint64_t seed = 67280421310721ull) : seed_(seed) {}
  void manual_seed(uint64_t seed);
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset);
  // Reserves `n` Philox blocks (4 values each) and returns the first block's counter.
  uint64_t reserve(uint64_t n_blocks);

  // What a random kernel draws from. Normally seed and first_block are final. While a CUDA
  // graph captures work that draws from this generator, `device_state` points to {seed, base}
  // in device memory and first_block is relative to base: each replay writes a fresh base
  // there before launching, so replays draw new numbers (as eager steps would) instead of
  // repeating the captured ones.
  struct Draw {
    uint64_t seed = 0, first_block = 0;
    const uint64_t* device_state = nullptr;
  };
  Draw reserve_draw(uint64_t n_blocks);
  // Where the next reservation starts: the offset, or while a graph captures, the block relative
  // to its base. With set_next_block, a recomputation (autograd::checkpoint) draws again what an
  // earlier computation drew, eagerly and inside a capture alike.
  uint64_t next_block() const;
  void set_next_block(uint64_t block);
  // Capture support for anvil::CUDAGraph: reservations become relative to `device_state`
  // until end_capture(), which returns how many blocks one replay uses.
  void begin_capture(const uint64_t* device_state);
  uint64_t end_capture();

 private:
  mutable std::mutex mu_;
  uint64_t seed_;
  uint64_t offset_ = 0;
  const uint64_t* capture_state_ = nullptr;  // set while a graph captures
  uint64_t capture_blocks_ = 0;
};

// The process-wide generator of a device kind (one for the CPU, one per CUDA device).
Generator& default_generator(Device device = kCPU);
// Seeds every default generator (torch.manual_seed).
void manual_seed(uint64_t seed);

}  // namespace anvil
