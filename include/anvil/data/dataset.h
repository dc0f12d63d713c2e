// Dataset: a finite, indexable collection of (input, target) examples, as torch.utils.data's
// map-style Dataset. Subset (a view through a list of indices) and the splitting helpers
// random_split and train_test_split live here too.
//
// A dataset is read by a DataLoader's background thread, so get() and get_batch() must not
// change observable state; they are const, and the datasets in anvil::data are safe to read
// from several threads at once.
#pragma once
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "anvil/core/tensor.h"

namespace anvil::data {

// One sample: the model's input and the target the loss compares it with.
struct Example {
  Tensor input;
  Tensor target;
};

// Several samples stacked along a new leading dim: input [B, ...], target [B, ...].
struct Batch {
  Tensor input;
  Tensor target;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  // Number of samples.
  virtual int64_t size() const = 0;
  // Sample `index`, 0 <= index < size(). Throws IndexError otherwise.
  virtual Example get(int64_t index) const = 0;
  // The samples at `indices`, stacked (torch's default collate). The default calls get() for
  // each index and stacks; in-memory datasets override it with one index_select per tensor.
  // Throws IndexError for an index out of range and ValueError for an empty list.
  virtual Batch get_batch(const std::vector<int64_t>& indices) const;
};

// The samples of `dataset` at `indices`, in that order (torch.utils.data.Subset).
class Subset : public Dataset {
 public:
  // Throws IndexError if an index lies outside [0, dataset->size()).
  Subset(std::shared_ptr<Dataset> dataset, std::vector<int64_t> indices);
  int64_t size() const override { return int64_t(indices_.size()); }
  Example get(int64_t index) const override;
  Batch get_batch(const std::vector<int64_t>& indices) const override;
  const std::vector<int64_t>& indices() const { return indices_; }
  const std::shared_ptr<Dataset>& dataset() const { return dataset_; }

 private:
  std::shared_ptr<Dataset> dataset_;
  std::vector<int64_t> indices_;
};

// Splits a random permutation of the dataset (from `seed`) into non-overlapping subsets of
// the given lengths, which must add up to dataset->size() (torch.utils.data.random_split).
// Throws ValueError otherwise.
std::vector<std::shared_ptr<Subset>> random_split(const std::shared_ptr<Dataset>& dataset,
                                                  const std::vector<int64_t>& lengths,
                                                  uint64_t seed = 0);
// Fractions that add up to 1 (within 1e-6): each split gets floor(n * fraction) samples and
// the remainder is dealt one by one to the first splits, as PyTorch does.
std::vector<std::shared_ptr<Subset>> random_split(const std::shared_ptr<Dataset>& dataset,
                                                  const std::vector<double>& fractions,
                                                  uint64_t seed = 0);

// (train, test) subsets of a random permutation: the test set holds ceil(test_fraction * n)
// samples and the train set the rest, the sizes scikit-learn's train_test_split gives.
// test_fraction must lie in (0, 1) and leave both sets non-empty; throws ValueError otherwise.
std::pair<std::shared_ptr<Subset>, std::shared_ptr<Subset>> train_test_split(
    const std::shared_ptr<Dataset>& dataset, double test_fraction = 0.25, uint64_t seed = 0);

}  // namespace anvil::data
