// Element types, their sizes and names, and PyTorch's type-promotion rules.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "anvil/core/half.h"

namespace anvil {

enum class DType : uint8_t { Bool, UInt8, Int32, Int64, Float16, BFloat16, Float32, Float64 };
inline constexpr int kNumDTypes = 8;

inline constexpr DType kBool = DType::Bool;
inline constexpr DType kUInt8 = DType::UInt8;
inline constexpr DType kInt32 = DType::Int32;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kFloat16 = DType::Float16;
inline constexpr DType kBFloat16 = DType::BFloat16;
inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "float32", "int64", ... as PyTorch spells them
bool is_floating(DType t);        // float16, bfloat16, float32, float64
bool is_integral(DType t, bool include_bool = false);
// The dtype that holds both (torch.promote_types).
DType promote_types(DType a, DType b);
// Parses "float32", "f32", "bf16", ... Throws ValueError for an unknown name.
DType dtype_from_string(const std::string& name);

template <class T> struct dtype_of;
template <> struct dtype_of<bool> { static constexpr DType value = kBool; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = kUInt8; };
template <> struct dtype_of<int32_t> { static constexpr DType value = kInt32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = kInt64; };
template <> struct dtype_of<float16> { static constexpr DType value = kFloat16; };
template <> struct dtype_of<bfloat16> { static constexpr DType value = kBFloat16; };
template <> struct dtype_of<float> { static constexpr DType value = kFloat32; };
template <> struct dtype_of<double> { static constexpr DType value = kFloat64; };
template <class T> inline constexpr DType dtype_v = dtype_of<T>::value;

}  // namespace anvil

// Calls the body with `scalar_t` bound to the C++ type of `dt`. Variants restrict the set.
#define ANVIL_DTYPE_CASE(enum_v, type, ...) \
  case ::anvil::DType::enum_v: {            \
    using scalar_t = type;                  \
    __VA_ARGS__();                          \
    break;                                  \
  }
#define ANVIL_DTYPE_FAIL(dt, op)                                                               \
  default:                                                                                     \
    throw ::anvil::DTypeError(std::string(op) + ": dtype " + ::anvil::dtype_name(dt) + \
                              " is not supported")
#define ANVIL_DISPATCH_FLOAT(dt, op, ...)                  \
  switch (dt) {                                            \
    ANVIL_DTYPE_CASE(Float32, float, __VA_ARGS__)          \
    ANVIL_DTYPE_CASE(Float64, double, __VA_ARGS__)         \
    ANVIL_DTYPE_CASE(Float16, ::anvil::float16, __VA_ARGS__) \
    ANVIL_DTYPE_CASE(BFloat16, ::anvil::bfloat16, __VA_ARGS__) \
    ANVIL_DTYPE_FAIL(dt, op);                              \
  }
#define ANVIL_DISPATCH_NUMERIC(dt, op, ...)                \
  switch (dt) {                                            \
    ANVIL_DTYPE_CASE(Float32, float, __VA_ARGS__)          \
    ANVIL_DTYPE_CASE(Float64, double, __VA_ARGS__)         \
    ANVIL_DTYPE_CASE(Float16, ::anvil::float16, __VA_ARGS__) \
    ANVIL_DTYPE_CASE(BFloat16, ::anvil::bfloat16, __VA_ARGS__) \
    ANVIL_DTYPE_CASE(Int32, int32_t, __VA_ARGS__)          \
    ANVIL_DTYPE_CASE(Int64, int64_t, __VA_ARGS__)          \
    ANVIL_DTYPE_CASE(UInt8, uint8_t, __VA_ARGS__)          \
    ANVIL_DTYPE_FAIL(dt, op);                              \
  }
#define ANVIL_DISPATCH_ALL(dt, op, ...)                    \
  switch (dt) {                                            \
    ANVIL_DTYPE_CASE(Float32, float, __VA_ARGS__)          \
    ANVIL_DTYPE_CASE(Float64, double, __VA_ARGS__)         \
    ANVIL_DTYPE_CASE(Float16, ::anvil::float16, __VA_ARGS__) \
    ANVIL_DTYPE_CASE(BFloat16, ::anvil::bfloat16, __VA_ARGS__) \
    ANVIL_DTYPE_CASE(Int32, int32_t, __VA_ARGS__)          \
    ANVIL_DTYPE_CASE(Int64, int64_t, __VA_ARGS__)          \
    ANVIL_DTYPE_CASE(UInt8, uint8_t, __VA_ARGS__)          \
    ANVIL_DTYPE_CASE(Bool, bool, __VA_ARGS__)              \
    ANVIL_DTYPE_FAIL(dt, op);                              \
  }
#define ANVIL_DISPATCH_INDEX(dt, op, ...)         \
  switch (dt) {                                   \
    ANVIL_DTYPE_CASE(Int32, int32_t, __VA_ARGS__) \
    ANVIL_DTYPE_CASE(Int64, int64_t, __VA_ARGS__) \
    ANVIL_DTYPE_FAIL(dt, op);                     \
  }
