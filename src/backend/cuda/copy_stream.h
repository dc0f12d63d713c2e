// The side stream of batch uploads (upload.cpp), one per device, and the events that order it
// with the compute stream (stream.h).
//
// Copies on the compute stream queue behind the kernels already there, so the next batch
// would arrive only after the current step; on a stream of their own they run during it, on
// the GPU's copy engines. Events carry the order between the two streams without the host
// waiting: a stream that waits on an event runs its later work only once the work recorded
// before the event, on the other stream, is done.
#pragma once
#include <cuda_runtime.h>

namespace anvil::cuda {

// cuda:`device`'s copy stream, created on first use and kept for the process (like the
// caching allocator). It does not synchronise implicitly with the legacy default stream.
// Throws DeviceError when the device does not exist.
cudaStream_t copy_stream(int device);

// A CUDA event of cuda:`device`, without timing (cheaper to record and wait on). It is
// recorded on, and waited on by, streams of that device.
class Event {
 public:
  explicit Event(int device);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // Marks the point `stream` has reached: the event completes once the work queued on it so
  // far has run.
  void record(cudaStream_t stream);
  // Work queued on `stream` from now on runs after the recorded point; the host goes on
  // (torch.cuda.Event.wait).
  void wait(cudaStream_t stream) const;
  // The host waits for the recorded point.
  void synchronize() const;

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace anvil::cuda
