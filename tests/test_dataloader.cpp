// DataLoader: batching, shuffling per epoch, drop_last, prefetch, errors and early stops.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <numeric>
#include <set>
#include <thread>

#include "anvil/data/data.h"
#include "anvil/core/pinned_memory.h"
#include "support/check.h"

using namespace anvil;
using namespace anvil::data;

namespace {

// n samples: input [2] = (i, -i) as float32, target i as int64.
std::shared_ptr<TensorDataset> numbers(int64_t n) {
  Tensor i = arange(n);
  Tensor x = stack({i.to(kFloat32), neg(i.to(kFloat32))}, 1);
  return std::make_shared<TensorDataset>(x, i);
}

// The targets of every batch of one pass.
std::vector<std::vector<int64_t>> pass(DataLoader& loader) {
  std::vector<std::vector<int64_t>> out;
  for (Batch& b : loader) out.push_back(b.target.to_vector<int64_t>());
  return out;
}

// Wraps a dataset: counts live get_batch calls and throws on the batch that contains `bad`.
class Flaky : public Dataset {
 public:
  Flaky(std::shared_ptr<Dataset> base, int64_t bad) : base_(std::move(base)), bad_(bad) {}
  int64_t size() const override { return base_->size(); }
  Example get(int64_t i) const override { return base_->get(i); }
  Batch get_batch(const std::vector<int64_t>& idx) const override {
    ++calls;
    if (std::find(idx.begin(), idx.end(), bad_) != idx.end())
      throw ValueError("Flaky: sample " + std::to_string(bad_) + " is broken");
    return base_->get_batch(idx);
  }
  mutable std::atomic<int> calls{0};

 private:
  std::shared_ptr<Dataset> base_;
  int64_t bad_;
};

}  // namespace

TEST(DataLoader, SequentialBatches) {
  DataLoader loader(numbers(10), {.batch_size = 4});
  EXPECT_EQ(loader.size(), 3);
  const auto batches = pass(loader);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0], (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(batches[2], (std::vector<int64_t>{8, 9}));  // the last partial batch is kept
  // Inputs follow their targets.
  for (Batch& b : loader) {
    EXPECT_EQ(b.input.shape(), (Shape{b.target.size(0), 2}));
    EXPECT_TRUE(test::all_close(b.input.select(1, 0), b.target.to(kFloat32), 0, 0));
    EXPECT_TRUE(test::all_close(b.input.select(1, 1), neg(b.target.to(kFloat32)), 0, 0));
  }
  // Default batch size is 1, as PyTorch's.
  DataLoader ones(numbers(3));
  EXPECT_EQ(ones.size(), 3);
  EXPECT_EQ(pass(ones)[1], (std::vector<int64_t>{1}));
}

TEST(DataLoader, DropLastCounts) {
  for (int64_t n : {0, 1, 7, 8, 9, 100}) {
    for (int64_t bs : {1, 3, 8}) {
      for (bool drop : {false, true}) {
        DataLoader loader(numbers(std::max<int64_t>(n, 0)), {.batch_size = bs, .drop_last = drop});
        const int64_t want = drop ? n / bs : (n + bs - 1) / bs;
        EXPECT_EQ(loader.size(), want) << n << " " << bs << " " << drop;
        const auto batches = pass(loader);
        EXPECT_EQ(int64_t(batches.size()), want);
        for (const auto& b : batches) {
          if (drop) {
            EXPECT_EQ(int64_t(b.size()), bs);
          }
        }
      }
    }
  }
}

TEST(DataLoader, ShuffleEachSampleOncePerEpochReproducible) {
  const int64_t n = 103;
  DataLoader loader(numbers(n), {.batch_size = 10, .shuffle = true, .seed = 7});
  std::vector<std::vector<int64_t>> orders;
  for (int epoch = 0; epoch < 3; ++epoch) {
    EXPECT_EQ(loader.epoch(), epoch);
    std::vector<int64_t> order;
    for (const auto& b : pass(loader)) order.insert(order.end(), b.begin(), b.end());
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(sorted, all) << "epoch " << epoch;  // every sample exactly once
    orders.push_back(order);
  }
  EXPECT_NE(orders[0], orders[1]);
  EXPECT_NE(orders[1], orders[2]);
  std::vector<int64_t> iota(n);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_NE(orders[0], iota);  // actually shuffled

  // Same seed, fresh loader: the same epochs. set_epoch jumps, as DistributedSampler.set_epoch.
  DataLoader again(numbers(n), {.batch_size = 10, .shuffle = true, .seed = 7});
  again.set_epoch(2);
  std::vector<int64_t> order2;
  for (const auto& b : pass(again)) order2.insert(order2.end(), b.begin(), b.end());
  EXPECT_EQ(order2, orders[2]);
  EXPECT_EQ(again.epoch(), 3);
  again.set_epoch(0);
  std::vector<int64_t> order0;
  for (const auto& b : pass(again)) order0.insert(order0.end(), b.begin(), b.end());
  EXPECT_EQ(order0, orders[0]);
  // Another seed, another order; batch_indices tells the plan without loading.
  DataLoader other(numbers(n), {.batch_size = 10, .shuffle = true, .seed = 8});
  EXPECT_NE(other.batch_indices(0), loader.batch_indices(0));
  EXPECT_EQ(loader.batch_indices(1).front(),
            std::vector<int64_t>(orders[1].begin(), orders[1].begin() + 10));
}

TEST(DataLoader, SkipNextResumesAPassMidway) {
  DataLoader loader(numbers(53), {.batch_size = 10, .shuffle = true, .seed = 3});
  const auto plan = loader.batch_indices(1);
  loader.set_epoch(1);
  loader.skip_next(4);
  auto rest = pass(loader);
  ASSERT_EQ(rest.size(), 2u);  // 6 batches, the first 4 left out
  EXPECT_EQ(rest[0], plan[4]);
  EXPECT_EQ(rest[1], plan[5]);
  EXPECT_EQ(loader.epoch(), 2);
  EXPECT_EQ(pass(loader).size(), 6u);  // only the next pass is shortened
  loader.skip_next(6);
  EXPECT_TRUE(pass(loader).empty());
  EXPECT_TRUE(test::throws_with<ValueError>([&] { loader.skip_next(7); }, {"skip_next", "6", "7"}));
  EXPECT_THROW(loader.skip_next(-1), ValueError);
}

TEST(DataLoader, PinMemoryWithoutCudaGivesOrdinaryBatches) {
  if (pinned_memory_available()) GTEST_SKIP() << "has a CUDA device (test_cuda_pinned covers it)";
  DataLoader loader(numbers(10), {.batch_size = 4, .pin_memory = true});
  auto batches = pass(loader);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[2], (std::vector<int64_t>{8, 9}));
  EXPECT_TRUE(test::throws_with<DeviceError>([] { (void)ones({3}).pin_memory(); },
                                             {"pin_memory", "CUDA device"}));
  EXPECT_FALSE(ones({3}).is_pinned());
}

TEST(DataLoader, PrefetchOnOffIdentical) {
  auto ds = numbers(57);
  for (bool shuffle : {false, true}) {
    DataLoader on(ds, {.batch_size = 8, .shuffle = shuffle, .seed = 3, .prefetch = true});
    DataLoader off(ds, {.batch_size = 8, .shuffle = shuffle, .seed = 3, .prefetch = false});
    for (int epoch = 0; epoch < 2; ++epoch) {
      std::vector<Batch> a, b;
      for (Batch& x : on) a.push_back(x);
      for (Batch& x : off) b.push_back(x);
      ASSERT_EQ(a.size(), b.size());
      for (size_t k = 0; k < a.size(); ++k) {
        EXPECT_TRUE(test::all_close(a[k].input, b[k].input, 0, 0));
        EXPECT_EQ(a[k].target.to_vector<int64_t>(), b[k].target.to_vector<int64_t>());
      }
    }
  }
}

TEST(DataLoader, PrefetchRunsAhead) {
  // While the consumer holds batch 0, the worker prepares the next ones (up to two ahead).
  auto flaky = std::make_shared<Flaky>(numbers(20), -1);
  DataLoader loader(flaky, {.batch_size = 2});
  auto it = loader.begin();
  for (int i = 0; i < 2000 && flaky->calls < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(flaky->calls.load(), 3);  // batch 0 (taken) + two queued
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(flaky->calls.load(), 3);  // and no further
  // Without prefetch nothing runs ahead.
  auto lazy = std::make_shared<Flaky>(numbers(20), -1);
  DataLoader sync(lazy, {.batch_size = 2, .prefetch = false});
  auto it2 = sync.begin();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(lazy->calls.load(), 1);
}

TEST(DataLoader, ExceptionInGetBatchSurfaces) {
  for (bool prefetch : {true, false}) {
    auto flaky = std::make_shared<Flaky>(numbers(20), 13);  // in batch 3 of 5 (size 4)
    DataLoader loader(flaky, {.batch_size = 4, .prefetch = prefetch});
    int seen = 0;
    EXPECT_TRUE(test::throws_with<ValueError>(
        [&] {
          for (Batch& b : loader) {
            (void)b;
            ++seen;
          }
        },
        {"Flaky", "sample 13"}));
    EXPECT_EQ(seen, 3) << "prefetch=" << prefetch;
    // In the first batch: begin() throws.
    auto first = std::make_shared<Flaky>(numbers(20), 0);
    DataLoader loader0(first, {.batch_size = 4, .prefetch = prefetch});
    EXPECT_TRUE(test::throws_with<ValueError>([&] { loader0.begin(); }, {"sample 0"}));
  }
}

TEST(DataLoader, EarlyBreakStopsCleanly) {
  auto flaky = std::make_shared<Flaky>(numbers(1000), -1);
  DataLoader loader(flaky, {.batch_size = 10, .shuffle = true});
  for (int rep = 0; rep < 20; ++rep) {
    int k = 0;
    for (Batch& b : loader) {
      (void)b;
      if (++k == 2) break;  // the iterator's destructor stops and joins the worker
    }
  }
  // Each pass ran at most 2 taken + 2 queued + 1 in flight batches, far from all 100.
  EXPECT_LE(flaky->calls.load(), 20 * 5);
  EXPECT_EQ(loader.epoch(), 20);
  // Breaking out by an exception in the loop body too.
  EXPECT_THROW(
      {
        for (Batch& b : loader) {
          (void)b;
          throw std::runtime_error("body");
        }
      },
      std::runtime_error);
  // A started pass that is never advanced, then dropped.
  { auto it = loader.begin(); }
  // Iterator copies share the pass.
  auto it = loader.begin();
  auto copy = it;
  ++copy;
  EXPECT_EQ(it->target.to_vector<int64_t>(), copy->target.to_vector<int64_t>());
}

TEST(DataLoader, WorksOverSubsetsAndDefaultGetBatch) {
  auto base = numbers(30);
  auto [train, test_set] = train_test_split(base, 0.2, 4);
  DataLoader loader(train, {.batch_size = 7, .shuffle = true});
  std::set<int64_t> seen;
  for (Batch& b : loader)
    for (int64_t v : b.target.to_vector<int64_t>()) EXPECT_TRUE(seen.insert(v).second);
  EXPECT_EQ(seen, std::set<int64_t>(train->indices().begin(), train->indices().end()));
  for (int64_t v : test_set->indices()) EXPECT_FALSE(seen.count(v));
}

TEST(DataLoader, Errors) {
  EXPECT_TRUE(test::throws_with<ValueError>([] { DataLoader(numbers(3), {.batch_size = 0}); },
                                            {"DataLoader", "batch_size >= 1", "got 0"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { DataLoader(nullptr); }, {"DataLoader", "null"}));
  DataLoader loader(numbers(1));
  auto it = loader.begin();
  ++it;
  EXPECT_TRUE(it == loader.end());
  EXPECT_TRUE(
      test::throws_with<IndexError>([&] { *it; }, {"DataLoader::Iterator", "past the last batch"}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { ++it; }, {"past the last batch"}));
}
