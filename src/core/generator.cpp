#include "anvil/core/generator.h"

#include <deque>

#include "anvil/core/error.h"

namespace anvil {

std::array<uint32_t, 4> philox4x32(uint64_t counter_lo, uint64_t counter_hi, uint64_t key) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = uint32_t(counter_lo), c1 = uint32_t(counter_lo >> 32);
  uint32_t c2 = uint32_t(counter_hi), c3 = uint32_t(counter_hi >> 32);
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t(kM0) * c0, p1 = uint64_t(kM1) * c2;
    uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n1 = uint32_t(p1);
    uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1, n3 = uint32_t(p0);
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += kW0;
    k1 += kW1;
  }
  return {c0, c1, c2, c3};
}

void Generator::manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> g(mu_);
  seed_ = seed;
  offset_ = 0;
}

void Generator::set_offset(uint64_t offset) {
  std::lock_guard<std::mutex> g(mu_);
  offset_ = offset;
}

uint64_t Generator::reserve(uint64_t n_blocks) {
  std::lock_guard<std::mutex> g(mu_);
  ANVIL_CHECK(!capture_state_, DeviceError,
              "Generator::reserve: a CUDA graph is capturing; use reserve_draw");
  uint64_t start = offset_;
  offset_ += n_blocks;
  return start;
}

Generator::Draw Generator::reserve_draw(uint64_t n_blocks) {
  std::lock_guard<std::mutex> g(mu_);
  if (capture_state_) {
    Draw d{seed_, capture_blocks_, capture_state_};
    capture_blocks_ += n_blocks;
    return d;
  }
  Draw d{seed_, offset_, nullptr};
  offset_ += n_blocks;
  return d;
}

uint64_t Generator::next_block() const {
  std::lock_guard<std::mutex> g(mu_);
  return capture_state_ ? capture_blocks_ : offset_;
}

void Generator::set_next_block(uint64_t block) {
  std::lock_guard<std::mutex> g(mu_);
  (capture_state_ ? capture_blocks_ : offset_) = block;
}

void Generator::begin_capture(const uint64_t* device_state) {
  std::lock_guard<std::mutex> g(mu_);
  ANVIL_CHECK(!capture_state_, DeviceError,
              "Generator: a CUDA graph is already capturing draws from this generator");
  capture_state_ = device_state;
  capture_blocks_ = 0;
}

uint64_t Generator::end_capture() {
  std::lock_guard<std::mutex> g(mu_);
  capture_state_ = nullptr;
  return capture_blocks_;
}

namespace {
struct Generators {
  std::mutex mu;
  Generator cpu;
  std::deque<Generator> cuda;  // deque: references stay valid as it grows
};
Generators& generators() {
  static Generators g;
  return g;
}
}  // namespace

Generator& default_generator(Device device) {
  auto& g = generators();
  if (device.is_cpu()) return g.cpu;
  std::lock_guard<std::mutex> lock(g.mu);
  ANVIL_CHECK(device.index >= 0, DeviceError, "default_generator: bad device ", device.str());
  while (int(g.cuda.size()) <= device.index) g.cuda.emplace_back(g.cpu.seed());
  return g.cuda[size_t(device.index)];
}

void manual_seed(uint64_t seed) {
  auto& g = generators();
  g.cpu.manual_seed(seed);
  std::lock_guard<std::mutex> lock(g.mu);
  for (auto& c : g.cuda) c.manual_seed(seed);
  // Generators created later start from the CPU seed too.
}

}  // namespace anvil
