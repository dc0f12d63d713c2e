#include "anvil/io/safetensors.h"

#include <algorithm>
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
  std::string h = header.dump();
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
  std::string bytes = read_file(path);
  auto damaged = [&](const std::string& what) {
    return IOError("load_safetensors: '" + path + "' is damaged: " + what);
  };
  if (bytes.size() < 8) throw damaged("it is " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte header length");
  uint64_t len = 0;
  for (int i = 0; i < 8; ++i) len |= uint64_t(uint8_t(bytes[size_t(i)])) << (8 * i);
  if (len > bytes.size() - 8)
    throw damaged("the header claims " + std::to_string(len) + " bytes but only " +
                  std::to_string(bytes.size() - 8) + " follow");
  json header;
  try {
    header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + int64_t(len));
  } catch (const json::exception& e) {
    throw damaged(std::string("the header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) throw damaged("the header is not a JSON object");
  const size_t data_start = 8 + size_t(len), data_size = bytes.size() - data_start;
  StateDict out;
  std::vector<std::pair<size_t, size_t>> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (metadata && entry.is_object())
        for (const auto& [k, v] : entry.items())
          if (v.is_string()) (*metadata)[k] = v.get<std::string>();
      continue;
    }
    DType dt;
    if (!entry.is_object() || !entry.contains("dtype") || !entry["dtype"].is_string() ||
        !entry.contains("shape") || !entry["shape"].is_array() || !entry.contains("data_offsets") ||
        !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2)
      throw damaged("the entry of '" + name + "' lacks dtype, shape or data_offsets");
    if (!dtype_of_code(entry["dtype"].get<std::string>(), dt))
      throw damaged("tensor '" + name + "' has the unsupported dtype " + entry["dtype"].dump());
    Shape shape;
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_unsigned()) throw damaged("tensor '" + name + "' has a bad shape " + entry["shape"].dump());
      shape.push_back(d.get<int64_t>());
    }
    const auto& off = entry["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw damaged("tensor '" + name + "' has bad data_offsets " + off.dump());
    size_t b = off[0].get<size_t>(), e = off[1].get<size_t>();
    if (b > e || e > data_size)
      throw damaged("tensor '" + name + "' spans bytes [" + std::to_string(b) + ", " + std::to_string(e) +
                    ") of a " + std::to_string(data_size) + "-byte data section");
    // Overflow-safe size check: numel * element size must equal the byte range.
    long double want = (long double)(dtype_size(dt));
    for (auto d : shape) want *= (long double)d;
    if (want != (long double)(e - b))
      throw damaged("tensor '" + name + "' of shape " + to_string(shape) + " and dtype " +
                    dtype_name(dt) + " needs " + std::to_string((unsigned long long)want) +
                    " bytes, its range holds " + std::to_string(e - b));
    Tensor t = empty(shape, dt);
    if (e > b) std::memcpy(t.data_ptr(), bytes.data() + data_start + b, e - b);
    out[name] = t;
    ranges.emplace_back(b, e);
  }
  std::sort(ranges.begin(), ranges.end());
  size_t pos = 0;
  for (auto [b, e] : ranges) {
    if (b != pos) throw damaged(b < pos ? "two tensors' byte ranges overlap" : "the data section has a gap");
    pos = e;
  }
  if (pos != data_size) throw damaged("the data section has " + std::to_string(data_size - pos) + " unused trailing bytes");
  return out;
}

}  // namespace anvil::io
