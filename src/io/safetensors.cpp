#include "anvil/io/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>

#include "anvil/autograd/grad_mode.h"
#include "anvil/core/file.h"
#include "anvil/ops/creation.h"

namespace anvil::io {
namespace {
using json = nlohmann::json;

const char* code_of(DType t) {
  switch (t) {
    case kBool: return "BOOL";
    case kUInt8: return "U8";
    case kInt32: return "I32";
    case kInt64: return "I64";
    case kFloat16: return "F16";
    case kBFloat16: return "BF16";
    case kFloat32: return "F32";
    case kFloat64: return "F64";
  }
  return "?";
}

bool dtype_of_code(const std::string& c, DType& t) {
  static const std::map<std::string, DType> codes = {
      {"BOOL", kBool}, {"U8", kUInt8}, {"I32", kInt32}, {"I64", kInt64},
      {"F16", kFloat16}, {"BF16", kBFloat16}, {"F32", kFloat32}, {"F64", kFloat64}};
  auto it = codes.find(c);
  if (it == codes.end()) return false;
  t = it->second;
  return true;
}

// A JSON value for an error message, cut short: a damaged header may hold megabytes.
std::string brief(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() <= 80 ? s : s.substr(0, 77) + "...";
}

// Deeper documents are refused before they are built: copying or printing a JSON value
// recurses once per level, so a header of a million '[' would overflow the stack. (A
// safetensors header nests 3 levels.)
constexpr int kMaxJsonDepth = 64;
template <class Damaged>
json::parser_callback_t depth_limit(const Damaged& damaged) {
  return [damaged](int depth, json::parse_event_t, json&) {
    if (depth > kMaxJsonDepth)
      throw damaged("its header nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return true;
  };
}

}  // namespace

void save_safetensors(const StateDict& tensors, const std::string& path,
                      const std::map<std::string, std::string>& metadata) {
  NoGradGuard no_grad;
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> dense;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    ANVIL_CHECK(t.defined(), ValueError, "save_safetensors: tensor '", name, "' is undefined");
    Tensor c = t.detach().cpu().contiguous();
    size_t n = size_t(c.numel()) * c.element_size();
    header[name] = {{"dtype", code_of(c.dtype())}, {"shape", c.shape()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    dense.push_back(c);
  }
  std::string h;
  try {
    h = header.dump();
  } catch (const json::type_error& e) {  // JSON strings are UTF-8; these bytes are not
    throw ValueError(detail::cat("save_safetensors: a tensor name or metadata value for '", path,
                                 "' is not valid UTF-8 (", e.what(), ")"));
  }
  h.append((8 - h.size() % 8) % 8, ' ');  // align the data to 8 bytes
  std::string out(8, '\0');
  uint64_t len = h.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((len >> (8 * i)) & 0xff);
  out += h;
  out.reserve(out.size() + offset);
  for (const Tensor& c : dense)
    out.append(static_cast<const char*>(c.data_ptr()), size_t(c.numel()) * c.element_size());
  write_file_atomic(path, out);
}

StateDict load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  return load_safetensors_bytes(read_file(path), path, metadata);
}

StateDict load_safetensors_bytes(std::string_view bytes, const std::string& name,
                                 std::map<std::string, std::string>* metadata) {
  auto damaged = [&](const std::string& what) {
    return IOError("load_safetensors: '" + name + "' is damaged: " + what);
  };
  if (bytes.size() < 8) throw damaged("it is " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte header length");
  uint64_t len = 0;
  for (int i = 0; i < 8; ++i) len |= uint64_t(uint8_t(bytes[size_t(i)])) << (8 * i);
  if (len > bytes.size() - 8)
    throw damaged("the header claims " + std::to_string(len) + " bytes but only " +
                  std::to_string(bytes.size() - 8) + " follow");
  json header;
  try {
    header = json::parse(bytes.substr(8, size_t(len)), depth_limit(damaged));
  } catch (const json::exception& e) {
    throw damaged(std::string("the header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) throw damaged("the header is not a JSON object");
  const size_t data_start = 8 + size_t(len), data_size = bytes.size() - data_start;

  // Every entry is checked, and the byte ranges tile the data section, before any tensor is
  // allocated: overlapping ranges must not multiply a small file into a huge allocation.
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    size_t begin, end;
  };
  std::vector<Entry> entries;
  for (const auto& [key, entry] : header.items()) {
    if (key == "__metadata__") {
      if (metadata && entry.is_object())
        for (const auto& [k, v] : entry.items())
          if (v.is_string()) (*metadata)[k] = v.get<std::string>();
      continue;
    }
    Entry t{key, kFloat32, {}, 0, 0};
    if (!entry.is_object() || !entry.contains("dtype") || !entry["dtype"].is_string() ||
        !entry.contains("shape") || !entry["shape"].is_array() || !entry.contains("data_offsets") ||
        !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2)
      throw damaged("the entry of '" + key + "' lacks dtype, shape or data_offsets");
    if (!dtype_of_code(entry["dtype"].get<std::string>(), t.dtype))
      throw damaged("tensor '" + key + "' has the unsupported dtype " + brief(entry["dtype"]));
    // The product of the dimensions must fit int64 even when one of them is 0: strides are
    // products of the trailing dimensions.
    int64_t nonzero_bytes = int64_t(dtype_size(t.dtype));
    bool has_zero = false;
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t(INT64_MAX))
        throw damaged("tensor '" + key + "' has a bad shape " + brief(entry["shape"]) +
                      " (dimensions are integers from 0 to 2^63-1)");
      const int64_t n = d.get<int64_t>();
      has_zero = has_zero || n == 0;
      if (n != 0 && __builtin_mul_overflow(nonzero_bytes, n, &nonzero_bytes))
        throw damaged("tensor '" + key + "' has a shape " + brief(entry["shape"]) +
                      " whose size overflows 64 bits");
      t.shape.push_back(n);
    }
    const uint64_t bytes_needed = has_zero ? 0 : uint64_t(nonzero_bytes);
    const auto& off = entry["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw damaged("tensor '" + key + "' has bad data_offsets " + brief(off));
    t.begin = off[0].get<size_t>();
    t.end = off[1].get<size_t>();
    if (t.begin > t.end || t.end > data_size)
      throw damaged("tensor '" + key + "' spans bytes [" + std::to_string(t.begin) + ", " +
                    std::to_string(t.end) + ") of a " + std::to_string(data_size) +
                    "-byte data section");
    if (bytes_needed != t.end - t.begin)
      throw damaged("tensor '" + key + "' of shape " + to_string(t.shape) + " and dtype " +
                    dtype_name(t.dtype) + " needs " + std::to_string(bytes_needed) +
                    " bytes, its range holds " + std::to_string(t.end - t.begin));
    entries.push_back(std::move(t));
  }
  std::vector<std::pair<size_t, size_t>> ranges;
  for (const Entry& t : entries) ranges.emplace_back(t.begin, t.end);
  std::sort(ranges.begin(), ranges.end());
  size_t pos = 0;
  for (auto [b, e] : ranges) {
    if (b != pos) throw damaged(b < pos ? "two tensors' byte ranges overlap" : "the data section has a gap");
    pos = e;
  }
  if (pos != data_size) throw damaged("the data section has " + std::to_string(data_size - pos) + " unused trailing bytes");

  StateDict out;
  for (const Entry& t : entries) {
    Tensor x = empty(t.shape, t.dtype);
    if (t.end > t.begin)
      std::memcpy(x.data_ptr(), bytes.data() + data_start + t.begin, t.end - t.begin);
    out[t.name] = x;
  }
  return out;
}

}  // namespace anvil::io
