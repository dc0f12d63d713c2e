#include "anvil/core/dtype.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "anvil/core/error.h"

namespace anvil {

size_t dtype_size(DType t) {
  switch (t) {
    case kBool: case kUInt8: return 1;
    case kFloat16: case kBFloat16: return 2;
    case kInt32: case kFloat32: return 4;
    case kInt64: case kFloat64: return 8;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case kBool: return "bool";
    case kUInt8: return "uint8";
    case kInt32: return "int32";
    case kInt64: return "int64";
    case kFloat16: return "float16";
    case kBFloat16: return "bfloat16";
    case kFloat32: return "float32";
    case kFloat64: return "float64";
  }
  return "?";
}

bool is_floating(DType t) {
  return t == kFloat16 || t == kBFloat16 || t == kFloat32 || t == kFloat64;
}

bool is_integral(DType t, bool include_bool) {
  return t == kUInt8 || t == kInt32 || t == kInt64 || (include_bool && t == kBool);
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  if ((a == kFloat16 && b == kBFloat16) || (a == kBFloat16 && b == kFloat16)) return kFloat32;
  // Rank along bool < uint8 < int32 < int64 < {float16, bfloat16} < float32 < float64.
  auto rank = [](DType t) {
    switch (t) {
      case kBool: return 0;
      case kUInt8: return 1;
      case kInt32: return 2;
      case kInt64: return 3;
      case kFloat16: case kBFloat16: return 4;
      case kFloat32: return 5;
      case kFloat64: return 6;
    }
    return 0;
  };
  return rank(a) >= rank(b) ? a : b;
}

DType dtype_from_string(const std::string& name) {
  static const std::map<std::string, DType> names = {
      {"bool", kBool},       {"uint8", kUInt8},       {"int32", kInt32},     {"int", kInt32},
      {"int64", kInt64},     {"long", kInt64},        {"float16", kFloat16}, {"f16", kFloat16},
      {"half", kFloat16},    {"bfloat16", kBFloat16}, {"bf16", kBFloat16},   {"float32", kFloat32},
      {"f32", kFloat32},     {"float", kFloat32},     {"float64", kFloat64}, {"f64", kFloat64},
      {"double", kFloat64}};
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  auto it = names.find(n);
  if (it == names.end())
    throw ValueError("dtype: unknown dtype '" + name +
                     "' (expected one of bool, uint8, int32, int64, float16, bfloat16, float32, "
                     "float64)");
  return it->second;
}

}  // namespace anvil
