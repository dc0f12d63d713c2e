// DevicePrefetcher on CUDA: batches uploaded on the copy stream arrive intact while the compute
// stream is busy and device and page-locked blocks are recycled, dropped uploads do not write
// into memory reused after them, uploads are refused inside a graph capture, batches the copy
// stream does not take arrive through Tensor::to, and the Trainer gives bit-identical results
// with and without prefetching. Skipped without a GPU. Timing (the overlap itself) is not
// asserted here.
#include <memory>
#include <stdexcept>
#include <vector>

#include "anvil/core/cuda_graph.h"
#include "anvil/train/trainer.h"
#include "support/cuda_check.h"

using namespace anvil;

namespace {

using CudaPrefetch = test::CudaTest;

// 64 batches of 512 samples: inputs [512, 2048] float32 (4 MiB a batch), targets the sample
// indices (int64). Made once: building it takes a while on the host.
constexpr int64_t kBatch = 512, kFeatures = 2048, kBatches = 64;
std::shared_ptr<data::TensorDataset> big_dataset() {
  static const auto ds = [] {
    Generator g(21);
    Tensor x = rand({kBatch * kBatches, kFeatures}, {}, &g);
    return std::make_shared<data::TensorDataset>(x, arange(kBatch * kBatches));
  }();
  return ds;
}

// Queues about ten milliseconds of matrix products on the compute stream.
void keep_busy(Tensor& m) {
  for (int r = 0; r < 4; ++r) m = matmul(m, m);
}

// Each batch is read on the compute stream as it is handed out (a clone), while long products
// queued now and then keep the compute stream behind the copies or the copies behind it:
// - a copy that did not wait for the compute work queued before its destination was allocated
//   would overwrite a recycled block that an earlier clone had yet to read;
// - a clone that did not wait for its batch's copies would read a half-written batch (the
//   device cache starts poisoned with NaN);
// - a page-locked source reused before its copy ran would hand a later batch's values to it
//   (with pin_memory off, the prefetcher pins each batch itself into a block freed at once).
class CudaPrefetchPinned : public CudaPrefetch, public ::testing::WithParamInterface<bool> {};

TEST_P(CudaPrefetchPinned, BatchesArriveIntactWhileTheComputeStreamIsBusy) {
  auto ds = big_dataset();
  data::DataLoader loader(
      ds, {.batch_size = kBatch, .shuffle = true, .seed = 2, .pin_memory = GetParam()});
  data::DevicePrefetcher on_gpu(loader, kCUDA);
  EXPECT_EQ(on_gpu.device(), kCUDA);
  Tensor busy = rand({4096, 4096}, TensorOptions().device(kCUDA));
  std::vector<Tensor> inputs, targets;
  int64_t k = 0;
  for (data::Batch& b : on_gpu) {
    ASSERT_TRUE(b.input.device().is_cuda());
    ASSERT_TRUE(b.target.device().is_cuda());
    inputs.push_back(b.input.clone());
    targets.push_back(b.target.clone());
    if (k++ % 4 == 0) keep_busy(busy);
  }
  ASSERT_EQ(k, kBatches);
  const auto plan = loader.batch_indices(0);
  for (size_t i = 0; i < plan.size(); ++i) {
    Tensor idx = tensor(plan[i], {int64_t(plan[i].size())});
    EXPECT_EQ(inputs[i].dtype(), kFloat32);
    EXPECT_TRUE(equal(inputs[i].to(kCPU), index_select(ds->inputs(), 0, idx))) << "batch " << i;
    EXPECT_TRUE(equal(targets[i].to(kCPU), idx)) << "batch " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(PinMemory, CudaPrefetchPinned, ::testing::Bool());

// Leaving a pass with an upload in flight (break, an exception in the loop body) hands its
// memory back only in stream order after the copy: memory written right after must keep what
// was written.
TEST_F(CudaPrefetch, DroppedUploadsDoNotWriteIntoReusedMemory) {
  auto ds = big_dataset();
  data::DataLoader loader(ds, {.batch_size = kBatch, .pin_memory = true});
  data::DevicePrefetcher on_gpu(loader, kCUDA);
  Tensor busy = rand({4096, 4096}, TensorOptions().device(kCUDA));
  const TensorOptions on_device = TensorOptions().device(kCUDA);
  for (int rep = 0; rep < 8; ++rep) {
    // The upload of batch 2, issued while batch 1 is handed out, waits for the products queued
    // in the body for batch 0; it is dropped at once.
    int k = 0;
    for (data::Batch& b : on_gpu) {
      (void)b;
      if (k == 0) keep_busy(busy);
      if (++k == 2) break;
    }
    std::vector<Tensor> filled;
    for (int i = 0; i < 4; ++i) filled.push_back(full({kBatch, kFeatures}, float(rep), on_device));
    for (const Tensor& f : filled) {
      EXPECT_EQ(min(f).item<float>(), float(rep)) << "rep " << rep;
      EXPECT_EQ(max(f).item<float>(), float(rep)) << "rep " << rep;
    }
  }
  EXPECT_THROW(
      {
        for (data::Batch& b : on_gpu) {
          (void)b;
          keep_busy(busy);
          throw std::runtime_error("body");
        }
      },
      std::runtime_error);
  Tensor after = full({kBatch, kFeatures}, 3.0f, on_device);
  EXPECT_EQ(min(after).item<float>(), 3.0f);
  EXPECT_EQ(max(after).item<float>(), 3.0f);
}

// The uploads belong between graph replays: inside a capture they are refused, the capture
// fails, and afterwards they work.
TEST_F(CudaPrefetch, UploadsAreRefusedInsideAGraphCapture) {
  Tensor x = test::uniform({40, 3}, 4, -1, 1, kFloat32);
  auto ds = std::make_shared<data::TensorDataset>(x, arange(40));
  data::DataLoader loader(ds, {.batch_size = 16});
  data::DevicePrefetcher on_gpu(loader, kCUDA);
  CUDAGraph graph;
  graph.capture_begin();
  EXPECT_TRUE(test::throws_with<DeviceError>([&] { on_gpu.begin(); },
                                             {"batch upload", "DevicePrefetcher", "CUDA graph"}));
  EXPECT_THROW(graph.capture_end(), DeviceError);
  std::vector<Tensor> got;
  for (data::Batch& b : on_gpu) got.push_back(b.input.to(kCPU));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(equal(cat(got, 0), x));
}

// A dataset whose batches the copy stream does not take: a non-contiguous input and a target
// already on the device. They are moved by Tensor::to and arrive all the same.
class OddBatches : public data::Dataset {
 public:
  explicit OddBatches(Tensor x) : x_(std::move(x)) {}
  int64_t size() const override { return x_.size(0); }
  data::Example get(int64_t i) const override {
    return {x_.select(0, i), scalar_tensor(i, kInt64)};
  }
  data::Batch get_batch(const std::vector<int64_t>& idx) const override {
    Tensor i = tensor(idx, {int64_t(idx.size())});
    return {index_select(x_, 0, i).t().contiguous().t(), i.to(kCUDA)};
  }

 private:
  Tensor x_;
};

TEST_F(CudaPrefetch, OtherBatchesAreMovedByTensorTo) {
  Tensor x = test::uniform({40, 3}, 5, -1, 1, kFloat32);
  // Without the loader's thread: CUDA work belongs to the training loop's thread.
  data::DataLoader loader(std::make_shared<OddBatches>(x), {.batch_size = 16, .prefetch = false});
  data::DevicePrefetcher on_gpu(loader, kCUDA);
  std::vector<Tensor> inputs, targets;
  for (data::Batch& b : on_gpu) {
    ASSERT_TRUE(b.input.device().is_cuda());
    inputs.push_back(b.input.to(kCPU));
    targets.push_back(b.target.to(kCPU));
  }
  EXPECT_TRUE(equal(cat(inputs, 0), x));
  EXPECT_TRUE(equal(cat(targets, 0), arange(40)));
}

nn::ModulePtr small_net() {
  manual_seed(7);
  auto m = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(20, 32), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Dropout>(0.2), std::make_shared<nn::Linear>(32, 5)});
  m->to(kCUDA);
  return m;
}

// The Trainer on CUDA with and without prefetch_to_device: same batches, same kernels, so the
// parameters, the training losses and the validation metrics are bit-identical; with graphs
// on (the default) and off, with the loader pinning batches or not.
struct TrainerCase {
  bool graphs = true;
  bool pin = true;
};
class CudaPrefetchTrainer : public CudaPrefetch,
                            public ::testing::WithParamInterface<TrainerCase> {};

TEST_P(CudaPrefetchTrainer, PrefetchingChangesNoResult) {
  Tensor x = test::uniform({150, 20}, 8, -1, 1, kFloat32);
  Tensor y = randint(0, 5, {150}, TensorOptions(kInt64));
  auto ds = std::make_shared<data::TensorDataset>(x, y);
  auto fit = [&](bool prefetch, int64_t* replays) {
    auto net = small_net();
    data::DataLoader train(
        ds, {.batch_size = 32, .shuffle = true, .seed = 1, .pin_memory = GetParam().pin});
    data::DataLoader validation(ds, {.batch_size = 64});
    train::Trainer t(
        net, optim::make_optimizer("adam", net->parameters(), 1e-2), nn::make_loss("cross_entropy"),
        {.device = kCUDA, .cuda_graphs = GetParam().graphs, .prefetch_to_device = prefetch});
    train::History h = t.fit(train, 3, &validation);
    *replays = t.graphed_step() ? t.graphed_step()->replays() : 0;
    std::vector<Tensor> out;
    for (const Tensor& p : net->parameters()) out.push_back(p.to(kCPU));
    for (const auto& e : h.epochs())
      out.push_back(tensor(std::vector<double>{e.values.at("loss"), e.values.at("val_loss"),
                                               e.values.at("val_accuracy")}));
    out.push_back(t.predict(validation));
    return out;
  };
  int64_t plain_replays = 0, prefetched_replays = 0;
  auto plain = fit(false, &plain_replays);
  auto prefetched = fit(true, &prefetched_replays);
  EXPECT_EQ(plain_replays, prefetched_replays);
  if (GetParam().graphs) {
    EXPECT_GT(prefetched_replays, 0);
  }
  ASSERT_EQ(plain.size(), prefetched.size());
  for (size_t i = 0; i < plain.size(); ++i)
    EXPECT_TRUE(equal(plain[i], prefetched[i])) << "tensor " << i;
}

INSTANTIATE_TEST_SUITE_P(GraphsAndPinning, CudaPrefetchTrainer,
                         ::testing::Values(TrainerCase{.graphs = true, .pin = true},
                                           TrainerCase{.graphs = true, .pin = false},
                                           TrainerCase{.graphs = false, .pin = true}));

}  // namespace
