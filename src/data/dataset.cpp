#include "anvil/data/dataset.h"

#include <cmath>

#include "anvil/core/error.h"
#include "anvil/data/sampler.h"
#include "anvil/ops/join.h"

namespace anvil::data {

Batch Dataset::get_batch(const std::vector<int64_t>& indices) const {
  ANVIL_CHECK(!indices.empty(), ValueError,
              "Dataset::get_batch: expected at least one index, got none");
  std::vector<Tensor> inputs, targets;
  inputs.reserve(indices.size());
  targets.reserve(indices.size());
  for (int64_t i : indices) {
    Example e = get(i);
    inputs.push_back(std::move(e.input));
    targets.push_back(std::move(e.target));
  }
  return {stack(inputs), stack(targets)};
}

Subset::Subset(std::shared_ptr<Dataset> dataset, std::vector<int64_t> indices)
    : dataset_(std::move(dataset)), indices_(std::move(indices)) {
  ANVIL_CHECK(dataset_ != nullptr, ValueError, "Subset: expected a dataset, got null");
  const int64_t n = dataset_->size();
  for (size_t k = 0; k < indices_.size(); ++k)
    ANVIL_CHECK(indices_[k] >= 0 && indices_[k] < n, IndexError, "Subset: index ", indices_[k],
                " (position ", k, ") is out of range for a dataset of ", n, " samples");
}

Example Subset::get(int64_t index) const {
  ANVIL_CHECK(index >= 0 && index < size(), IndexError, "Subset::get: index ", index,
              " is out of range for a subset of ", size(), " samples");
  return dataset_->get(indices_[size_t(index)]);
}

Batch Subset::get_batch(const std::vector<int64_t>& indices) const {
  ANVIL_CHECK(!indices.empty(), ValueError,
              "Subset::get_batch: expected at least one index, got none");
  std::vector<int64_t> mapped(indices.size());
  for (size_t k = 0; k < indices.size(); ++k) {
    const int64_t i = indices[k];
    ANVIL_CHECK(i >= 0 && i < size(), IndexError, "Subset::get_batch: index ", i,
                " is out of range for a subset of ", size(), " samples");
    mapped[k] = indices_[size_t(i)];
  }
  return dataset_->get_batch(mapped);
}

std::vector<std::shared_ptr<Subset>> random_split(const std::shared_ptr<Dataset>& dataset,
                                                  const std::vector<int64_t>& lengths,
                                                  uint64_t seed) {
  ANVIL_CHECK(dataset != nullptr, ValueError, "random_split: expected a dataset, got null");
  int64_t total = 0;
  for (int64_t l : lengths) {
    ANVIL_CHECK(l >= 0, ValueError, "random_split: expected non-negative lengths, got ", l);
    total += l;
  }
  ANVIL_CHECK(total == dataset->size(), ValueError, "random_split: the lengths add up to ", total,
              " but the dataset has ", dataset->size(), " samples");
  const std::vector<int64_t> order = shuffled_indices(total, seed);
  std::vector<std::shared_ptr<Subset>> out;
  int64_t start = 0;
  for (int64_t l : lengths) {
    out.push_back(std::make_shared<Subset>(
        dataset, std::vector<int64_t>(order.begin() + start, order.begin() + start + l)));
    start += l;
  }
  return out;
}

std::vector<std::shared_ptr<Subset>> random_split(const std::shared_ptr<Dataset>& dataset,
                                                  const std::vector<double>& fractions,
                                                  uint64_t seed) {
  ANVIL_CHECK(dataset != nullptr, ValueError, "random_split: expected a dataset, got null");
  double sum = 0;
  for (double f : fractions) {
    ANVIL_CHECK(f >= 0 && f <= 1, ValueError, "random_split: expected fractions in [0, 1], got ",
                f);
    sum += f;
  }
  ANVIL_CHECK(std::abs(sum - 1) <= 1e-6, ValueError,
              "random_split: expected fractions that add up to 1, got a sum of ", sum);
  const int64_t n = dataset->size();
  std::vector<int64_t> lengths;
  int64_t used = 0;
  for (double f : fractions) {
    lengths.push_back(int64_t(std::floor(double(n) * f)));
    used += lengths.back();
  }
  for (size_t k = 0; used < n; k = (k + 1) % lengths.size(), ++used) ++lengths[k];
  return random_split(dataset, lengths, seed);
}

std::pair<std::shared_ptr<Subset>, std::shared_ptr<Subset>> train_test_split(
    const std::shared_ptr<Dataset>& dataset, double test_fraction, uint64_t seed) {
  ANVIL_CHECK(dataset != nullptr, ValueError, "train_test_split: expected a dataset, got null");
  ANVIL_CHECK(test_fraction > 0 && test_fraction < 1, ValueError,
              "train_test_split: expected test_fraction in (0, 1), got ", test_fraction);
  const int64_t n = dataset->size();
  const int64_t n_test = int64_t(std::ceil(test_fraction * double(n)));
  ANVIL_CHECK(n_test < n, ValueError, "train_test_split: test_fraction ", test_fraction, " of ", n,
              " samples leaves no training samples");
  auto parts = random_split(dataset, std::vector<int64_t>{n - n_test, n_test}, seed);
  return {parts[0], parts[1]};
}

}  // namespace anvil::data
