// A number of any dtype, passed to ops such as full, fill_, clamp and item.
#pragma once
#include <cstdint>
#include <type_traits>

#include "anvil/core/dtype.h"

namespace anvil {

class Scalar {
 public:
  Scalar() = default;
  template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
  Scalar(T v) {  // NOLINT: numbers convert implicitly, as in PyTorch
    if constexpr (std::is_same_v<T, bool>) {
      kind_ = Kind::Bool; i_ = v; d_ = v;
    } else if constexpr (std::is_integral_v<T>) {
      kind_ = Kind::Int; i_ = int64_t(v); d_ = double(v);
    } else {
      kind_ = Kind::Float; d_ = double(v); i_ = int64_t(v);
    }
  }
  Scalar(float16 v) : Scalar(float(v)) {}   // NOLINT
  Scalar(bfloat16 v) : Scalar(float(v)) {}  // NOLINT

  double to_double() const { return d_; }
  int64_t to_int() const { return i_; }
  bool is_floating() const { return kind_ == Kind::Float; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  template <class T> T to() const {
    if constexpr (std::is_same_v<T, bool>) return d_ != 0;
    else if constexpr (std::is_integral_v<T>) return T(kind_ == Kind::Float ? int64_t(d_) : i_);
    else return T(d_);
  }
  // The dtype PyTorch gives a tensor made from this number: bool, int64 or float32.
  DType default_dtype() const {
    return kind_ == Kind::Bool ? kBool : kind_ == Kind::Int ? kInt64 : kFloat32;
  }

 private:
  enum class Kind : uint8_t { Bool, Int, Float };
  Kind kind_ = Kind::Int;
  double d_ = 0;
  int64_t i_ = 0;
};

}  // namespace anvil
