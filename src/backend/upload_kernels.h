// Host -> device uploads that overlap the device's compute work (data::DevicePrefetcher): the
// copies run on a side stream, and the stream every op runs on waits for them only when their
// tensors are handed out. There is no CPU entry: CPU data needs no upload.
#pragma once
#include <memory>
#include <vector>

#include "anvil/core/tensor.h"
#include "backend/dispatch.h"

namespace anvil::backend {

// Copies in flight. take() makes the device's compute stream wait for them and returns the
// device tensors, ready for any op. Dropped without take(), it makes the compute stream wait
// all the same, so that the destination memory is not handed to later work before the copies
// have written it. Used by one thread, like the rest of a training loop.
class PendingUpload {
 public:
  virtual ~PendingUpload() = default;
  virtual std::vector<Tensor> take() = 0;
};

// Starts copying the contiguous CPU tensors `host` (undefined ones stay undefined) to `device`:
// contiguous tensors of the same shapes and dtypes. The host tensors may go at once. Throws
// DeviceError inside a CUDA graph capture (a captured copy would read host memory at every
// replay).
using UploadFn = std::unique_ptr<PendingUpload>(const std::vector<Tensor>& host, Device device);

inline constinit KernelTable<UploadFn> upload_kernels{"upload"};

}  // namespace anvil::backend
