#include "anvil/data/dataloader.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

#include "anvil/autograd/grad_mode.h"
#include "anvil/core/error.h"
#include "anvil/core/pinned_memory.h"
#include "anvil/data/sampler.h"

namespace anvil::data {

// One pass: the batches' indices, the batch the consumer holds and, with prefetch, a worker
// thread that fills a queue of up to kDepth ready batches.
struct DataLoader::Pass {
  static constexpr size_t kDepth = 2;
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };

  std::shared_ptr<Dataset> dataset;
  std::vector<std::vector<int64_t>> batches;
  size_t next = 0;  // the batch the consumer takes next
  Batch current;
  bool done = false;

  std::thread worker;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Slot> ready;
  bool stop = false;

  bool pin = false;  // copy each batch into page-locked memory as it is made

  Pass(std::shared_ptr<Dataset> d, std::vector<std::vector<int64_t>> b, bool prefetch, bool pin)
      : dataset(std::move(d)), batches(std::move(b)), pin(pin) {
    if (prefetch && !batches.empty()) worker = std::thread([this] { produce(); });
  }
  ~Pass() {
    {
      std::lock_guard<std::mutex> lk(mu);
      stop = true;
    }
    cv.notify_all();
    if (worker.joinable()) worker.join();
  }
  Pass(const Pass&) = delete;
  Pass& operator=(const Pass&) = delete;

  Slot make(size_t k) {
    Slot s;
    try {
      NoGradGuard no_grad;
      s.batch = dataset->get_batch(batches[k]);
      if (pin) {
        s.batch.input = s.batch.input.pin_memory();
        s.batch.target = s.batch.target.pin_memory();
      }
    } catch (...) {
      s.error = std::current_exception();
    }
    return s;
  }

  void produce() {
    for (size_t k = 0; k < batches.size(); ++k) {
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return stop || ready.size() < kDepth; });
        if (stop) return;
      }
      Slot s = make(k);
      const bool failed = s.error != nullptr;
      {
        std::lock_guard<std::mutex> lk(mu);
        if (stop) return;
        ready.push_back(std::move(s));
      }
      cv.notify_all();
      if (failed) return;  // the consumer ends the pass there
    }
  }

  // Moves `current` to the next batch, or sets `done`; re-throws the dataset's exception.
  void advance() {
    current = Batch();
    if (next >= batches.size()) {
      done = true;
      return;
    }
    Slot s;
    if (worker.joinable()) {
      std::unique_lock<std::mutex> lk(mu);
      cv.wait(lk, [&] { return !ready.empty(); });
      s = std::move(ready.front());
      ready.pop_front();
      lk.unlock();
      cv.notify_all();
    } else {
      s = make(next);
    }
    ++next;
    if (s.error) {
      done = true;
      std::rethrow_exception(s.error);
    }
    current = std::move(s.batch);
  }
};

DataLoader::DataLoader(std::shared_ptr<Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  ANVIL_CHECK(dataset_ != nullptr, ValueError, "DataLoader: expected a dataset, got null");
  ANVIL_CHECK(options_.batch_size >= 1, ValueError, "DataLoader: expected batch_size >= 1, got ",
              options_.batch_size);
}

int64_t DataLoader::size() const {
  const int64_t n = dataset_->size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<std::vector<int64_t>> DataLoader::batch_indices(int64_t epoch) const {
  const int64_t n = dataset_->size();
  std::vector<int64_t> order;
  if (options_.shuffle) {
    order = shuffled_indices(n, options_.seed, uint64_t(epoch));
  } else {
    order.resize(size_t(n));
    std::iota(order.begin(), order.end(), int64_t(0));
  }
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(size()));
  for (size_t k = 0; k < out.size(); ++k) {
    const int64_t start = int64_t(k) * options_.batch_size;
    const int64_t stop = std::min(start + options_.batch_size, n);
    out[k].assign(order.begin() + start, order.begin() + stop);
  }
  return out;
}

void DataLoader::skip_next(int64_t batches) {
  ANVIL_CHECK(batches >= 0 && batches <= size(), ValueError,
              "DataLoader::skip_next: expected 0 <= batches <= ", size(), ", got ", batches);
  skip_ = batches;
}

DataLoader::Iterator DataLoader::begin() {
  auto batches = batch_indices(epoch_);
  batches.erase(batches.begin(), batches.begin() + skip_);  // resuming mid-epoch
  skip_ = 0;
  // Without a CUDA device there is nothing to pin for (as PyTorch, which warns and goes on).
  const bool pin = options_.pin_memory && pinned_memory_available();
  auto pass = std::make_shared<Pass>(dataset_, std::move(batches), options_.prefetch, pin);
  ++epoch_;
  pass->advance();
  return Iterator(std::move(pass));
}

Batch& DataLoader::Iterator::operator*() const {
  ANVIL_CHECK(!done(), IndexError, "DataLoader::Iterator: dereferenced past the last batch");
  return pass_->current;
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  ANVIL_CHECK(!done(), IndexError, "DataLoader::Iterator: incremented past the last batch");
  pass_->advance();
  return *this;
}

bool DataLoader::Iterator::done() const { return !pass_ || pass_->done; }

}  // namespace anvil::data
