// Argument checks shared by the ops. Each throws an anvil::Error that names the op, what it
// expected and what it got.
#pragma once
#include <string>
#include <vector>

#include "anvil/core/tensor.h"

namespace anvil::ops {

// `t` must be defined.
void check_defined(const Tensor& t, const char* op, const char* arg);
// All defined tensors must share one device.
void check_same_device(const std::vector<Tensor>& ts, const char* op);
// `t` must have a floating-point dtype.
void check_floating(const Tensor& t, const char* op, const char* arg = "input");
// `t` must have an integer index dtype (int32 or int64).
void check_index(const Tensor& t, const char* op, const char* arg = "index");
// `t` must have exactly `n` dims (or, with max_n, between n and max_n).
void check_dim(const Tensor& t, int64_t n, const char* op, const char* arg = "input",
               int64_t max_n = -1);
// In-place writes are not recorded by autograd: refuse them on tensors that need grad while
// grad mode is on (wrap optimizer updates in NoGradGuard).
void check_inplace(const Tensor& t, const char* op);

}  // namespace anvil::ops
