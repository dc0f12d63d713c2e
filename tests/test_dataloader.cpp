// DataLoader: batching, shuffling per epoch, drop_last, prefetch, errors and early stops; and
// the DevicePrefetcher over it on the CPU (its CUDA uploads: test_cuda_prefetch).
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

// On the CPU the prefetcher hands out the loader's batches themselves, pass for pass.
TEST(DevicePrefetcher, YieldsTheLoadersBatchesInOrder) {
  auto ds = numbers(57);
  for (bool prefetch : {true, false}) {
    DataLoader loader(ds, {.batch_size = 8, .shuffle = true, .seed = 5, .prefetch = prefetch});
    DevicePrefetcher batches(loader, kCPU);
    EXPECT_EQ(batches.size(), 8);
    EXPECT_EQ(batches.device(), kCPU);
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      const auto plan = loader.batch_indices(epoch);
      EXPECT_EQ(loader.epoch(), epoch);
      size_t k = 0;
      for (Batch& b : batches) {
        ASSERT_LT(k, plan.size());
        EXPECT_TRUE(b.input.device().is_cpu());
        EXPECT_EQ(b.target.to_vector<int64_t>(), plan[k]) << "epoch " << epoch << " batch " << k;
        EXPECT_TRUE(test::all_close(b.input.select(1, 0), b.target.to(kFloat32), 0, 0));
        ++k;
      }
      EXPECT_EQ(k, plan.size()) << "epoch " << epoch;
    }
    EXPECT_EQ(loader.epoch(), 3);
  }
  // An empty loader: begin() is end().
  DataLoader none(numbers(0));
  DevicePrefetcher empty(none, kCPU);
  EXPECT_TRUE(empty.begin() == empty.end());
}

// A pass resumed mid-epoch (as Trainer does after load_checkpoint) goes through the loader.
TEST(DevicePrefetcher, KeepsTheLoadersEpochAndSkip) {
  DataLoader loader(numbers(53), {.batch_size = 10, .shuffle = true, .seed = 3});
  DevicePrefetcher batches(loader, kCPU);
  const auto plan = loader.batch_indices(4);
  loader.set_epoch(4);
  loader.skip_next(3);
  std::vector<std::vector<int64_t>> seen;
  for (Batch& b : batches) seen.push_back(b.target.to_vector<int64_t>());
  EXPECT_EQ(seen, std::vector<std::vector<int64_t>>(plan.begin() + 3, plan.end()));
  EXPECT_EQ(loader.epoch(), 5);
  loader.skip_next(6);
  EXPECT_TRUE(batches.begin() == batches.end());
}

// Each batch is staged one ahead: when batch k is handed out, batch k + 1 has been asked of
// the loader (on CUDA, its upload is in flight), and no more.
TEST(DevicePrefetcher, StagesOneBatchAhead) {
  auto flaky = std::make_shared<Flaky>(numbers(20), -1);
  DataLoader loader(flaky, {.batch_size = 2, .prefetch = false});
  DevicePrefetcher batches(loader, kCPU);
  auto it = batches.begin();
  EXPECT_EQ(flaky->calls.load(), 2);
  EXPECT_EQ(it->target.to_vector<int64_t>(), (std::vector<int64_t>{0, 1}));
  ++it;
  EXPECT_EQ(flaky->calls.load(), 3);
  EXPECT_EQ(it->target.to_vector<int64_t>(), (std::vector<int64_t>{2, 3}));
}

TEST(DevicePrefetcher, DatasetExceptionSurfacesAtItsBatch) {
  for (bool prefetch : {true, false}) {
    // Sample 13 is in batch 3 of 5: batches 0-2 arrive, though batch 3 was staged (and failed)
    // while batch 2 was handed out.
    auto flaky = std::make_shared<Flaky>(numbers(20), 13);
    DataLoader loader(flaky, {.batch_size = 4, .prefetch = prefetch});
    DevicePrefetcher batches(loader, kCPU);
    int seen = 0;
    EXPECT_TRUE(test::throws_with<ValueError>(
        [&] {
          for (Batch& b : batches) {
            EXPECT_EQ(b.target.to_vector<int64_t>()[0], 4 * seen);
            ++seen;
          }
        },
        {"Flaky", "sample 13"}));
    EXPECT_EQ(seen, 3) << "prefetch=" << prefetch;
    // In the first batch: begin() throws; in the second, the first still arrives.
    auto first = std::make_shared<Flaky>(numbers(20), 0);
    DataLoader loader0(first, {.batch_size = 4, .prefetch = prefetch});
    DevicePrefetcher batches0(loader0, kCPU);
    EXPECT_TRUE(test::throws_with<ValueError>([&] { batches0.begin(); }, {"sample 0"}));
    auto second = std::make_shared<Flaky>(numbers(20), 5);
    DataLoader loader1(second, {.batch_size = 4, .prefetch = prefetch});
    DevicePrefetcher batches1(loader1, kCPU);
    auto it = batches1.begin();
    EXPECT_EQ(it->target.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3}));
    EXPECT_TRUE(test::throws_with<ValueError>([&] { ++it; }, {"sample 5"}));
    EXPECT_TRUE(it == batches1.end());  // the pass is over
  }
}

TEST(DevicePrefetcher, EarlyBreakStopsCleanly) {
  auto flaky = std::make_shared<Flaky>(numbers(1000), -1);
  DataLoader loader(flaky, {.batch_size = 10, .shuffle = true});
  DevicePrefetcher batches(loader, kCPU);
  for (int rep = 0; rep < 20; ++rep) {
    int k = 0;
    for (Batch& b : batches) {
      (void)b;
      if (++k == 2) break;
    }
  }
  // Each pass ran at most 2 taken + 1 staged + 2 queued + 1 in flight batches, far from 100.
  EXPECT_LE(flaky->calls.load(), 20 * 6);
  EXPECT_EQ(loader.epoch(), 20);
  EXPECT_THROW(
      {
        for (Batch& b : batches) {
          (void)b;
          throw std::runtime_error("body");
        }
      },
      std::runtime_error);
  { auto it = batches.begin(); }  // started, never advanced, dropped
  // Iterator copies share the pass.
  auto it = batches.begin();
  auto copy = it;
  ++copy;
  EXPECT_EQ(it->target.to_vector<int64_t>(), copy->target.to_vector<int64_t>());
  // The next pass is whole.
  int n = 0;
  for (Batch& b : batches) n += int(b.target.size(0));
  EXPECT_EQ(n, 1000);
}

TEST(DevicePrefetcher, Errors) {
  DataLoader loader(numbers(1));
  DevicePrefetcher batches(loader, kCPU);
  auto it = batches.begin();
  ++it;
  EXPECT_TRUE(it == batches.end());
  EXPECT_TRUE(test::throws_with<IndexError>([&] { *it; },
                                            {"DevicePrefetcher::Iterator", "past the last batch"}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { ++it; }, {"past the last batch"}));
  // A CUDA device this machine (or build) lacks.
  const Device missing(DeviceKind::CUDA, cuda_device_count());
  EXPECT_TRUE(test::throws_with<DeviceError>([&] { (void)DevicePrefetcher(loader, missing); },
                                             {"DevicePrefetcher", missing.str()}));
}
