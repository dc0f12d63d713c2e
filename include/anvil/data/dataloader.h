// DataLoader: batches of a Dataset, in order or shuffled, with the next batch prepared on a
// background thread while the current one is used (torch.utils.data.DataLoader with one
// worker).
//
//   auto train = std::make_shared<data::FashionMNIST>();
//   data::DataLoader loader(train, {.batch_size = 64, .shuffle = true, .seed = 1});
//   for (int epoch = 0; epoch < 10; ++epoch)
//     for (data::Batch& b : loader) step(b.input, b.target);
//
// Epochs. Each pass over the loader (each call to begin()) uses the current epoch and then
// advances it by one, so consecutive passes see different orders. set_epoch(e) picks the epoch
// of the next pass, as torch's DistributedSampler.set_epoch. With shuffle, the order of an epoch
// depends only on (seed, epoch) (see shuffled_indices), so runs are reproducible.
//
// Errors. An exception thrown by the dataset while the background thread prepares a batch is
// re-thrown in the consumer when it reaches that batch (from begin() or ++), and the pass ends.
// Stopping early (break, an exception in the loop body) is fine: the iterator's destructor stops
// and joins the thread.
#pragma once
#include <cstdint>
#include <iterator>
#include <memory>
#include <vector>

#include "anvil/data/dataset.h"

namespace anvil::data {

struct DataLoaderOptions {
  int64_t batch_size = 1;  // as PyTorch's default
  bool shuffle = false;
  uint64_t seed = 0;       // of the shuffle
  bool drop_last = false;  // drop a last batch smaller than batch_size
  bool prefetch = true;    // prepare up to two batches ahead on a background thread
  // Put each batch in page-locked memory (Tensor::pin_memory), so that its upload to a CUDA
  // device runs asynchronously; ignored where there is no CUDA device.
  bool pin_memory = false;
};

class DataLoader {
  struct Pass;  // one pass over the data: its order and its background thread

 public:
  // Throws ValueError for a null dataset or batch_size < 1.
  explicit DataLoader(std::shared_ptr<Dataset> dataset, DataLoaderOptions options = {});

  // Number of batches per pass: ceil(n / batch_size), or floor with drop_last.
  int64_t size() const;
  // The epoch the next pass will use.
  int64_t epoch() const { return epoch_; }
  void set_epoch(int64_t epoch) { epoch_ = epoch; }
  // The next pass leaves out its first `batches` batches (in that epoch's order), as a run
  // resumed mid-epoch needs; later passes are whole. Throws ValueError beyond size().
  void skip_next(int64_t batches);
  const DataLoaderOptions& options() const { return options_; }
  const std::shared_ptr<Dataset>& dataset() const { return dataset_; }
  // The sample indices of every batch of a pass at `epoch`, in order.
  std::vector<std::vector<int64_t>> batch_indices(int64_t epoch) const;

  // An input iterator over one pass. Copies share the pass; the last one to go stops the
  // background thread.
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = Batch*;
    using reference = Batch&;

    Iterator() = default;  // the end
    Batch& operator*() const;
    Batch* operator->() const { return &**this; }
    // Moves to the next batch; re-throws an exception the dataset threw preparing it.
    Iterator& operator++();
    bool operator==(const Iterator& other) const { return done() == other.done(); }

   private:
    friend class DataLoader;
    explicit Iterator(std::shared_ptr<Pass> pass) : pass_(std::move(pass)) {}
    bool done() const;
    std::shared_ptr<Pass> pass_;
  };

  // Starts a pass at epoch() and advances epoch(). Re-throws an exception from the first batch.
  Iterator begin();
  Iterator end() { return Iterator(); }

 private:
  std::shared_ptr<Dataset> dataset_;
  DataLoaderOptions options_;
  int64_t epoch_ = 0;
  int64_t skip_ = 0;
};

}  // namespace anvil::data
