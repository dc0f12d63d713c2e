#include "anvil/data/device_prefetcher.h"

#include <exception>
#include <optional>
#include <utility>
#include <vector>

#include "anvil/core/error.h"
#include "backend/upload_kernels.h"

namespace anvil::data {
namespace {

// What the copy stream uploads; anything else is moved by Tensor::to, whose rules (strides,
// memory format) then hold as they do without prefetching.
bool uploadable(const Tensor& t) {
  return !t.defined() || (t.device().is_cpu() && t.is_contiguous());
}
Tensor moved(const Tensor& t, Device device) { return t.defined() ? t.to(device) : t; }

}  // namespace

// One pass: the loader's iterator, the batch the consumer holds and the one staged after it.
struct DevicePrefetcher::Pass {
  // The batch after `current`: uploading, ready, or the exception that took its place.
  struct Staged {
    std::unique_ptr<backend::PendingUpload> upload;  // host -> CUDA, in flight
    Batch batch;                                     // otherwise: already where it goes
    std::exception_ptr error;
  };

  Device device;
  DataLoader::Iterator source;  // at the staged batch
  Batch current;
  std::optional<Staged> next;  // empty: the pass ends after `current`
  bool done = false;

  Pass(Device d, DataLoader::Iterator first) : device(d), source(std::move(first)) {}

  // Stages the source's batch, after moving the source on when `move_on`. An exception (the
  // dataset's, re-thrown by the loader, or the upload's) is kept for the consumer to meet at
  // that batch.
  void stage(bool move_on) {
    next.reset();
    try {
      if (move_on) ++source;
      if (source == DataLoader::Iterator()) return;
      const Batch& b = *source;
      Staged s;
      if (device.is_cuda() && uploadable(b.input) && uploadable(b.target))
        s.upload = backend::upload_kernels[device]({b.input, b.target}, device);
      else
        s.batch = Batch{moved(b.input, device), moved(b.target, device)};
      next = std::move(s);
    } catch (...) {
      Staged failed;
      failed.error = std::current_exception();
      next = std::move(failed);
    }
  }

  // Hands out the staged batch, then stages the one after it: its upload is issued before the
  // caller queues work on the batch handed out, so it overlaps that work (see the header).
  void advance() {
    current = Batch();  // its memory may serve the next upload, which waits for its users
    if (!next) {
      done = true;
      return;
    }
    Staged s = std::move(*next);
    next.reset();
    try {
      if (s.error) std::rethrow_exception(s.error);
      if (s.upload) {
        std::vector<Tensor> t = s.upload->take();
        current = Batch{t[0], t[1]};
      } else {
        current = std::move(s.batch);
      }
    } catch (...) {
      done = true;
      throw;
    }
    stage(/*move_on=*/true);
  }
};

DevicePrefetcher::DevicePrefetcher(DataLoader& loader, Device device)
    : loader_(&loader), device_(device) {
  if (!device.is_cuda()) return;
  ANVIL_CHECK(backend::upload_kernels.has(DeviceKind::CUDA), DeviceError,
              "DevicePrefetcher: expected a device of this build of anvil, got ", device.str(),
              " (built without CUDA)");
  ANVIL_CHECK(device.index >= 0 && device.index < cuda_device_count(), DeviceError,
              "DevicePrefetcher: ", device.str(), " is not available (this machine has ",
              cuda_device_count(), " CUDA devices)");
}

DevicePrefetcher::Iterator DevicePrefetcher::begin() {
  auto pass = std::make_shared<Pass>(device_, loader_->begin());
  pass->stage(/*move_on=*/false);
  pass->advance();
  return Iterator(std::move(pass));
}

Batch& DevicePrefetcher::Iterator::operator*() const {
  ANVIL_CHECK(!done(), IndexError, "DevicePrefetcher::Iterator: dereferenced past the last batch");
  return pass_->current;
}

DevicePrefetcher::Iterator& DevicePrefetcher::Iterator::operator++() {
  ANVIL_CHECK(!done(), IndexError, "DevicePrefetcher::Iterator: incremented past the last batch");
  pass_->advance();
  return *this;
}

bool DevicePrefetcher::Iterator::done() const { return !pass_ || pass_->done; }

}  // namespace anvil::data
