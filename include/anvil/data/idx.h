// The IDX file format of the MNIST family (http://yann.lecun.com/exdb/mnist/): a 4-byte magic
// number (two zero bytes, a type byte, the number of dims), each dim as a big-endian uint32,
// then the values in row-major order, big-endian. Files may be gzip-compressed; a gzip file is
// recognised by its magic bytes (1f 8b), not by its name.
#pragma once
#include <string>

#include "anvil/core/tensor.h"

namespace anvil::data {

// Reads an IDX file (raw or gzipped) into a CPU tensor with the file's dims. The type byte
// picks the dtype:
//   0x08 unsigned byte -> uint8     0x09 signed byte -> int32    0x0B int16 -> int32
//   0x0C int32         -> int32     0x0D float32     -> float32  0x0E float64 -> float64
// (anvil has no int8/int16, so those widen to int32.)
// Throws IOError naming the file and the fault: it cannot be opened or read, it is not IDX
// (bad magic or unknown type byte), the header or data is truncated, the dims describe a
// different number of bytes than the file holds, or the gzip stream is corrupt or cut short.
Tensor read_idx(const std::string& path);

// Writes `t` (uint8, int32, float32 or float64; any shape of at most 255 dims, each below
// 2^32) as IDX, gzip-compressed when `gzip` is set. Writes to a temporary name and renames,
// so a failure leaves no half-written file. Throws DTypeError for other dtypes and IOError
// when the file cannot be written.
void write_idx(const std::string& path, const Tensor& t, bool gzip = false);

}  // namespace anvil::data
