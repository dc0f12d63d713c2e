#include "backend/cuda/copy_stream.h"

#include <memory>
#include <mutex>
#include <vector>

#include "backend/cuda/caching_allocator.h"
#include "backend/cuda/runtime.h"

namespace anvil::cuda {

cudaStream_t copy_stream(int device) {
  static std::mutex mu;
  // Leaked on purpose: uploads may still be dropped during static destruction.
  static auto* streams = new std::vector<cudaStream_t>(size_t(device_count()), nullptr);
  ANVIL_CHECK(device >= 0 && device < int(streams->size()), DeviceError,
              "copy stream: cuda:", device, " is not available (this machine has ", streams->size(),
              " CUDA devices)");
  std::lock_guard<std::mutex> lock(mu);
  cudaStream_t& s = (*streams)[size_t(device)];
  if (!s) {
    DeviceGuard guard(device);
    check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  }
  return s;
}

Event::Event(int device) {
  DeviceGuard guard(device);
  check(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
}

Event::~Event() { cudaEventDestroy(event_); }  // released by the driver once it has completed

void Event::record(cudaStream_t stream) {
  check(cudaEventRecord(event_, stream), "cudaEventRecord");
}

void Event::wait(cudaStream_t stream) const {
  check(cudaStreamWaitEvent(stream, event_, 0), "cudaStreamWaitEvent");
}

void Event::synchronize() const { check(cudaEventSynchronize(event_), "cudaEventSynchronize"); }

}  // namespace anvil::cuda
