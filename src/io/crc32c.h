// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as iSCSI, ext4 and TFRecord use it.
// Table-driven, one byte at a time; crc32c("123456789") == 0xE3069283.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace anvil::io {

// Continues a CRC over `n` more bytes (start with crc = 0).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n);
inline uint32_t crc32c(const void* data, size_t n) { return crc32c_extend(0, data, n); }
inline uint32_t crc32c(std::string_view s) { return crc32c(s.data(), s.size()); }

}  // namespace anvil::io
