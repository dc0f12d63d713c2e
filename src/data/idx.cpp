// IDX reading and writing, with gzip through zlib's inflate/deflate.
#include "anvil/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "anvil/core/error.h"

namespace anvil::data {
namespace {

using Bytes = std::vector<uint8_t>;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw IOError("read_idx: '" + path + "': " + what);
}

Bytes read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, std::string("cannot open the file (") + std::strerror(errno) + ")");
  Bytes bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) fail(path, "cannot read the file");
  return bytes;
}

bool is_gzip(const Bytes& b) { return b.size() >= 2 && b[0] == 0x1f && b[1] == 0x8b; }

// Inflates every gzip member of `in`.
Bytes gunzip(const std::string& path, const Bytes& in) {
  Bytes out;
  if (in.size() >= 18) {  // the trailer's ISIZE: the uncompressed size mod 2^32 (a hint)
    const uint8_t* t = in.data() + in.size() - 4;
    out.reserve(size_t(t[0]) | size_t(t[1]) << 8 | size_t(t[2]) << 16 | size_t(t[3]) << 24);
  }
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) fail(path, "cannot start zlib");
  z.next_in = const_cast<Bytes::value_type*>(in.data());
  z.avail_in = uInt(in.size());  // < 4 GiB: the MNIST family is far smaller
  if (in.size() > UINT32_MAX) {
    inflateEnd(&z);
    fail(path, "gzip files over 4 GiB are not supported");
  }
  uint8_t chunk[1 << 16];
  for (;;) {
    z.next_out = chunk;
    z.avail_out = sizeof chunk;
    const int rc = inflate(&z, Z_NO_FLUSH);
    out.insert(out.end(), chunk, chunk + (sizeof chunk - z.avail_out));
    if (rc == Z_STREAM_END) {
      if (z.avail_in == 0) break;
      inflateReset(&z);  // another gzip member follows
      continue;
    }
    if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT || rc == Z_MEM_ERROR) {
      const std::string msg = z.msg ? z.msg : "invalid data";
      inflateEnd(&z);
      fail(path, "corrupt gzip data (" + msg + ")");
    }
    if (rc == Z_BUF_ERROR || (z.avail_in == 0 && z.avail_out != 0)) {
      inflateEnd(&z);
      fail(path, "the gzip stream is truncated (it ends before its end marker)");
    }
  }
  inflateEnd(&z);
  return out;
}

struct TypeInfo {
  uint8_t code;
  const char* name;
  size_t file_size;  // bytes per value in the file
  DType dtype;
};
constexpr TypeInfo kTypes[] = {
    {0x08, "unsigned byte", 1, kUInt8}, {0x09, "signed byte", 1, kInt32},
    {0x0B, "int16", 2, kInt32},         {0x0C, "int32", 4, kInt32},
    {0x0D, "float32", 4, kFloat32},     {0x0E, "float64", 8, kFloat64},
};

uint64_t be(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = v << 8 | p[i];
  return v;
}

std::string dims_str(const Shape& s) { return to_string(s); }

}  // namespace

Tensor read_idx(const std::string& path) {
  const Bytes raw = read_file(path);
  Bytes inflated;
  const Bytes* data = &raw;
  if (is_gzip(raw)) {
    inflated = gunzip(path, raw);
    data = &inflated;
  }
  const Bytes& d = *data;
  if (d.size() < 4)
    fail(path, "not an IDX file: " + std::to_string(d.size()) +
                   " bytes, shorter than the 4-byte magic number");
  if (d[0] != 0 || d[1] != 0) {
    char magic[32];
    std::snprintf(magic, sizeof magic, "%02x %02x %02x %02x", d[0], d[1], d[2], d[3]);
    fail(path, std::string("not an IDX file: bad magic number ") + magic +
                   " (expected 00 00 <type> <ndims>)");
  }
  const TypeInfo* type = nullptr;
  for (const auto& t : kTypes)
    if (t.code == d[2]) type = &t;
  if (!type) {
    char code[8];
    std::snprintf(code, sizeof code, "0x%02x", d[2]);
    fail(path, std::string("not an IDX file: unknown type byte ") + code +
                   " (expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e)");
  }
  const size_t ndims = d[3];
  const size_t header = 4 + 4 * ndims;
  if (d.size() < header)
    fail(path, "truncated header: " + std::to_string(ndims) + " dims need " +
                   std::to_string(header) + " bytes, the file holds " + std::to_string(d.size()));
  Shape shape(ndims);
  uint64_t count = 1;
  for (size_t i = 0; i < ndims; ++i) {
    shape[i] = int64_t(be(&d[4 + 4 * i], 4));
    const uint64_t s = uint64_t(shape[i]);
    count = s != 0 && count > UINT64_MAX / 16 / s ? UINT64_MAX / 16 : count * s;  // saturates
  }
  const uint64_t want = count * type->file_size;
  const uint64_t have = d.size() - header;
  if (want > have)
    fail(path, "truncated data: dims " + dims_str(shape) + " of " + type->name + " need " +
                   std::to_string(want) + " bytes after the header, the file holds " +
                   std::to_string(have));
  if (want != have)
    fail(path, "dims " + dims_str(shape) + " of " + type->name + " describe " +
                   std::to_string(want) + " bytes of data, but the file holds " +
                   std::to_string(have) + " (trailing bytes)");

  Tensor t = Tensor::empty(shape, type->dtype);
  const uint8_t* src = d.data() + header;
  const size_t n = size_t(count);
  switch (type->code) {
    case 0x08:
      if (n) std::memcpy(t.data<uint8_t>(), src, n);
      break;
    case 0x09: {
      int32_t* o = t.data<int32_t>();
      for (size_t i = 0; i < n; ++i) o[i] = int8_t(src[i]);
      break;
    }
    case 0x0B: {
      int32_t* o = t.data<int32_t>();
      for (size_t i = 0; i < n; ++i) o[i] = int16_t(uint16_t(be(src + 2 * i, 2)));
      break;
    }
    case 0x0C: {
      int32_t* o = t.data<int32_t>();
      for (size_t i = 0; i < n; ++i) o[i] = int32_t(uint32_t(be(src + 4 * i, 4)));
      break;
    }
    case 0x0D: {
      float* o = t.data<float>();
      for (size_t i = 0; i < n; ++i) {
        const uint32_t u = uint32_t(be(src + 4 * i, 4));
        std::memcpy(&o[i], &u, 4);
      }
      break;
    }
    default: {  // 0x0E
      double* o = t.data<double>();
      for (size_t i = 0; i < n; ++i) {
        const uint64_t u = be(src + 8 * i, 8);
        std::memcpy(&o[i], &u, 8);
      }
      break;
    }
  }
  return t;
}

void write_idx(const std::string& path, const Tensor& t_in, bool gzip) {
  const char* op = "write_idx";
  ANVIL_CHECK(t_in.defined(), ValueError, op, ": expected a defined tensor");
  const DType dt = t_in.dtype();
  uint8_t code = 0;
  switch (dt) {
    case DType::UInt8:
      code = 0x08;
      break;
    case DType::Int32:
      code = 0x0C;
      break;
    case DType::Float32:
      code = 0x0D;
      break;
    case DType::Float64:
      code = 0x0E;
      break;
    default:
      throw DTypeError(std::string(op) + ": expected uint8, int32, float32 or float64, got " +
                       dtype_name(dt));
  }
  ANVIL_CHECK(t_in.dim() <= 255, ShapeError, op, ": IDX holds at most 255 dims, got ", t_in.dim());
  for (int64_t s : t_in.shape())
    ANVIL_CHECK(s <= int64_t(UINT32_MAX), ShapeError, op, ": dims must be below 2^32, got ",
                to_string(t_in.shape()));
  const Tensor t = t_in.cpu().contiguous();
  const size_t esize = t.element_size();
  Bytes out;
  out.reserve(4 + 4 * size_t(t.dim()) + size_t(t.numel()) * esize);
  out.insert(out.end(), {0, 0, code, uint8_t(t.dim())});
  auto put_be = [&](uint64_t v, size_t n) {
    for (size_t i = n; i-- > 0;) out.push_back(uint8_t(v >> (8 * i)));
  };
  for (int64_t s : t.shape()) put_be(uint64_t(s), 4);
  const uint8_t* src = static_cast<const uint8_t*>(t.data_ptr());
  for (size_t i = 0; i < size_t(t.numel()); ++i) {
    uint64_t v = 0;
    std::memcpy(&v, src + i * esize, esize);  // little-endian host
    put_be(v, esize);
  }

  const std::string tmp = path + ".tmp";
  if (gzip) {
    gzFile g = gzopen(tmp.c_str(), "wb");
    if (!g) throw IOError(std::string(op) + ": cannot open '" + tmp + "' for writing");
    bool ok = true;
    for (size_t at = 0; ok && at < out.size(); at += 1 << 30) {
      const unsigned n = unsigned(std::min(out.size() - at, size_t(1) << 30));
      ok = gzwrite(g, out.data() + at, n) == int(n);
    }
    if (gzclose(g) != Z_OK || !ok) {
      std::remove(tmp.c_str());
      throw IOError(std::string(op) + ": cannot write '" + tmp + "'");
    }
  } else {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw IOError(std::string(op) + ": cannot open '" + tmp + "' for writing");
    f.write(reinterpret_cast<const char*>(out.data()), std::streamsize(out.size()));
    f.close();
    if (!f) {
      std::remove(tmp.c_str());
      throw IOError(std::string(op) + ": cannot write '" + tmp + "'");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw IOError(std::string(op) + ": cannot rename '" + tmp + "' to '" + path +
                  "': " + ec.message());
  }
}

}  // namespace anvil::data
