// bfloat16 and float16 storage types. Arithmetic happens in float32 (as in PyTorch's CPU
// kernels); conversion from float rounds to nearest even.
#pragma once
#include <cstdint>
#include <cstring>

namespace anvil {

struct bfloat16 {
  uint16_t bits = 0;
  bfloat16() = default;
  bfloat16(float f) : bits(from_float(f)) {}  // NOLINT: implicit like a builtin float type
  operator float() const {                    // NOLINT
    uint32_t u = uint32_t(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  static uint16_t from_float(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return uint16_t(u >> 16);
  }
};

struct float16 {
  uint16_t bits = 0;
  float16() = default;
  float16(float f) : bits(from_float(f)) {}  // NOLINT
  operator float() const { return to_float(bits); }  // NOLINT
  static float to_float(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu, u;
    if (exp == 0) {
      if (man == 0) {
        u = sign;
      } else {  // subnormal: normalise
        exp = 127 - 15 + 1;
        while (!(man & 0x400u)) { man <<= 1; --exp; }
        u = sign | (exp << 23) | ((man & 0x3ffu) << 13);
      }
    } else if (exp == 31) {
      u = sign | 0x7f800000u | (man << 13);
    } else {
      u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  static uint16_t from_float(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u);     // NaN
    if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);    // overflow -> inf (>= 65520)
    if (a < 0x38800000u) {                                    // subnormal or zero in half
      if (a < 0x33000000u) return uint16_t(sign);             // < 2^-25 rounds to 0
      uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
      uint32_t shift = 126 - e;                               // value = r * 2^-24
      uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
      if (rem > half || (rem == half && (r & 1u))) ++r;
      return uint16_t(sign | r);
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u);  // round mantissa to 10 bits, nearest even
    r -= 0x38000000u;                             // rebias exponent 127 -> 15
    return uint16_t(sign | (r >> 13));
  }
};

}  // namespace anvil
