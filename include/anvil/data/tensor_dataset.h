// TensorDataset: samples are the rows (first dim) of an input tensor and a target tensor held
// in memory, as torch.utils.data.TensorDataset(inputs, targets).
#pragma once
#include "anvil/data/dataset.h"

namespace anvil::data {

class TensorDataset : public Dataset {
 public:
  // inputs [N, ...] and targets [N, ...] (e.g. class indices [N]). Throws ShapeError if either
  // is 0-dim or their first dims differ. The tensors are shared, not copied.
  TensorDataset(Tensor inputs, Tensor targets);
  int64_t size() const override { return inputs_.size(0); }
  // Views of row `index` of the inputs and targets.
  Example get(int64_t index) const override;
  // index_select along dim 0: input [B, ...], target [B, ...].
  Batch get_batch(const std::vector<int64_t>& indices) const override;
  const Tensor& inputs() const { return inputs_; }
  const Tensor& targets() const { return targets_; }

 private:
  Tensor inputs_, targets_;
};

namespace detail {
// Checks that every index lies in [0, n) (IndexError naming `op`; ValueError if empty) and
// returns them as an int64 tensor for index_select.
Tensor index_tensor(const std::vector<int64_t>& indices, int64_t n, const char* op);
}  // namespace detail

}  // namespace anvil::data
