#include "anvil/data/tensor_dataset.h"

#include "anvil/core/error.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/indexing.h"

namespace anvil::data {

namespace detail {
Tensor index_tensor(const std::vector<int64_t>& indices, int64_t n, const char* op) {
  ANVIL_CHECK(!indices.empty(), ValueError, op, ": expected at least one index, got none");
  for (int64_t i : indices)
    ANVIL_CHECK(i >= 0 && i < n, IndexError, op, ": index ", i,
                " is out of range for a dataset of ", n, " samples");
  return tensor(indices);
}
}  // namespace detail

TensorDataset::TensorDataset(Tensor inputs, Tensor targets)
    : inputs_(std::move(inputs)), targets_(std::move(targets)) {
  ANVIL_CHECK(inputs_.defined() && targets_.defined(), ValueError,
              "TensorDataset: expected defined inputs and targets");
  ANVIL_CHECK(inputs_.dim() >= 1 && targets_.dim() >= 1, ShapeError,
              "TensorDataset: expected inputs and targets with a sample dim, got shapes ",
              to_string(inputs_.shape()), " and ", to_string(targets_.shape()));
  ANVIL_CHECK(inputs_.size(0) == targets_.size(0), ShapeError,
              "TensorDataset: expected as many targets as inputs, got ", inputs_.size(0),
              " inputs (shape ", to_string(inputs_.shape()), ") and ", targets_.size(0),
              " targets (shape ", to_string(targets_.shape()), ")");
}

Example TensorDataset::get(int64_t index) const {
  ANVIL_CHECK(index >= 0 && index < size(), IndexError, "TensorDataset::get: index ", index,
              " is out of range for a dataset of ", size(), " samples");
  return {inputs_.select(0, index), targets_.select(0, index)};
}

Batch TensorDataset::get_batch(const std::vector<int64_t>& indices) const {
  Tensor idx = detail::index_tensor(indices, size(), "TensorDataset::get_batch");
  return {index_select(inputs_, 0, idx), index_select(targets_, 0, idx)};
}

}  // namespace anvil::data
