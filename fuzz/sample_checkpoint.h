// The small checkpoint the fuzz seeds start from, shared by the seed generator and the
// checkpoint target (whose document mode wraps fuzzed metadata around these very tensors).
#pragma once
#include <cstring>
#include <string>
#include <vector>

#include "anvil/io/checkpoint.h"
#include "anvil/ops/creation.h"

namespace anvil::fuzz {

// Host values into a new CPU tensor, without any kernel (the fuzz build links no backend).
template <class T>
Tensor host_tensor(const std::vector<T>& values, const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memcpy(t.data_ptr(), values.data(), values.size() * sizeof(T));
  return t;
}

inline io::Checkpoint sample_checkpoint() {
  io::Checkpoint ck;
  ck.model = {{"0.weight", host_tensor<float>({1.5f, -2, 0.25f, 4}, {2, 2}, kFloat32)},
              {"0.bias", host_tensor<float>({0.5f, -0.5f}, {2}, kFloat32)}};
  ck.optimizer = {{"state.0.step", host_tensor<int64_t>({7}, {}, kInt64)},
                  {"param_groups.0.lr", host_tensor<double>({0.01}, {}, kFloat64)}};
  ck.scheduler = {{"last_epoch", host_tensor<int64_t>({2}, {}, kInt64)}};
  ck.architecture = R"({"input_shape": [2], "layers": [{"type": "dense", "units": 2}]})";
  ck.epoch = 3;
  ck.global_step = 48;
  ck.loader_epoch = 3;
  ck.rng = {{"cpu", 3, 120}, {"cuda:0", 3, 64}};
  ck.history =
      nlohmann::json::array({{{"epoch", 1}, {"loss", 0.75}}, {{"epoch", 2}, {"loss", 0.5}}});
  return ck;
}

// The checkpoint's tensors under the names a checkpoint file stores them.
inline StateDict stored_tensors(const io::Checkpoint& ck) {
  StateDict out;
  for (const auto& [k, v] : ck.model) out["model." + k] = v;
  for (const auto& [k, v] : ck.optimizer) out["optimizer." + k] = v;
  for (const auto& [k, v] : ck.scheduler) out["scheduler." + k] = v;
  return out;
}

}  // namespace anvil::fuzz
