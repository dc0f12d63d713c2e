// DevicePrefetcher: a DataLoader's batches, already on a device, each one uploaded while the
// step on the one before runs (PyTorch users write this by hand with a side stream and
// non_blocking copies).
//
//   data::DataLoader loader(train, {.batch_size = 256, .shuffle = true, .pin_memory = true});
//   data::DevicePrefetcher on_gpu(loader, kCUDA);
//   for (data::Batch& b : on_gpu) step(b.input, b.target);   // b.input, b.target on cuda:0
//
// Why. Every op and copy runs on one stream per device (the compute stream), so an upload
// issued there waits behind the step queued before it: the GPU computes, then copies, then
// computes. Here each upload runs on a copy stream of its own, on the GPU's copy engines,
// at the same time as the step.
//
// Order. When batch i is handed out (by begin() or ++), the compute stream is made to wait
// for batch i's copies, and then batch i+1's upload is issued, before the caller queues step
// i. The upload's device memory comes from the caching allocator, which may hand out a block
// that compute work queued earlier still uses; the copy waits for the compute stream as it was
// at that moment, so for steps up to i-1 only, and overlaps step i. The page-locked source
// is reused only after its copy has read it. None of this waits on the host, and none of it
// may run inside a CUDA graph capture (it happens between steps, before a replay).
//
// Pinning. A batch not in page-locked memory is copied into it first, on the calling thread;
// DataLoaderOptions::pin_memory does that on the loader's background thread instead.
//
// On the CPU, batches pass through as the loader makes them. A batch already on a device, or
// not contiguous (a collated batch is), is moved with Tensor::to, on the compute stream.
//
// Passes, epochs, errors. Each begin() starts one pass of the loader (loader.begin()), so the
// loader's epoch(), set_epoch() and skip_next() mean what they mean for the loader itself. An
// exception the dataset throws preparing a batch surfaces when the consumer reaches that
// batch, as with the loader. Stopping early (break, an exception in the loop body) is fine:
// the upload in flight is dropped in order and the loader's pass stops. Use a prefetcher and
// its batches from one thread (the compute stream is the calling thread's). The loader must
// outlive begin(); iterators hold what they need after that.
#pragma once
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>

#include "anvil/core/device.h"
#include "anvil/data/dataloader.h"

namespace anvil::data {

class DevicePrefetcher {
  struct Pass;  // one pass: the loader's iterator, the batch handed out and the next one

 public:
  // Batches of `loader` on `device`. Throws DeviceError for a CUDA device that this build or
  // this machine lacks.
  DevicePrefetcher(DataLoader& loader, Device device);

  Device device() const { return device_; }
  DataLoader& loader() const { return *loader_; }
  // Batches per pass (the loader's size()).
  int64_t size() const { return loader_->size(); }

  // An input iterator over one pass, as DataLoader::Iterator: copies share the pass; the last
  // one to go drops the upload in flight and stops the loader's pass.
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = Batch*;
    using reference = Batch&;

    Iterator() = default;  // the end
    // The batch, on device(). Throws IndexError past the last batch.
    Batch& operator*() const;
    Batch* operator->() const { return &**this; }
    // Moves to the next batch; re-throws an exception the dataset threw preparing it.
    Iterator& operator++();
    bool operator==(const Iterator& other) const { return done() == other.done(); }

   private:
    friend class DevicePrefetcher;
    explicit Iterator(std::shared_ptr<Pass> pass) : pass_(std::move(pass)) {}
    bool done() const;
    std::shared_ptr<Pass> pass_;
  };

  // Starts a pass of the loader (advancing its epoch) and hands out its first batch. Re-throws
  // an exception from the first batch.
  Iterator begin();
  Iterator end() { return Iterator(); }

 private:
  DataLoader* loader_;
  Device device_;
};

}  // namespace anvil::data
