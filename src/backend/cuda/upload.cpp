// Batch uploads on the copy stream (backend/upload_kernels.h, copy_stream.h).
//
// One upload, enqueued without the host waiting for the device:
//  1. The destination tensors come from the caching allocator, which reuses memory in the
//     compute stream's order: a block it hands out may still be read or written by compute
//     work queued earlier that has not run yet. An event recorded on the compute stream right
//     after the allocation, and waited on by the copy stream, keeps the copies behind that
//     work. DevicePrefetcher starts batch i+1's upload before the step on batch i is queued,
//     so the wait covers the steps up to i-1 and the copies run during step i.
//  2. The copies run on the copy stream, from page-locked memory (from pageable memory the
//     driver would stage the bytes, waiting for the copy stream and so for step i-1). The
//     source blocks are marked as read by the copy stream, so the pinned allocator reuses them
//     only after these copies. A second event is recorded after the copies.
//  3. take() makes the compute stream wait on that event before any op can use the tensors.
//     An upload dropped without take() does the same, so its memory goes back to the
//     allocator only in the compute stream's order after the copies.
// Nothing here may run inside a graph capture: the copies happen before a replay, outside it.
#include <memory>
#include <vector>

#include "backend/cuda/capture.h"
#include "backend/cuda/copy_stream.h"
#include "backend/cuda/pinned_allocator.h"
#include "backend/cuda/runtime.h"
#include "backend/cuda/stream.h"
#include "backend/upload_kernels.h"

namespace anvil::cuda {
namespace {

// Contiguous `t` in page-locked memory (itself when it already is).
Tensor page_locked(const Tensor& t) { return t.is_pinned() ? t : t.pin_memory(); }

class Upload final : public backend::PendingUpload {
 public:
  Upload(const std::vector<Tensor>& host, Device device)
      : device_(device.index), allocated_(device_), copied_(device_) {
    DeviceGuard guard(device_);
    std::vector<Tensor> sources;
    for (const Tensor& h : host) {
      ANVIL_CHECK(!h.defined() || (h.device().is_cpu() && h.is_contiguous()), DeviceError,
                  "upload: expected contiguous CPU tensors, got a ",
                  h.is_contiguous() ? "" : "non-contiguous ", "tensor on ", h.device().str());
      const bool copy = h.defined() && h.numel() > 0;
      sources.push_back(copy ? page_locked(h) : Tensor());
      tensors_.push_back(h.defined()
                             ? Tensor::empty(h.shape(), TensorOptions(h.dtype()).device(device))
                             : Tensor());
    }
    allocated_.record(current_stream());
    const cudaStream_t stream = copy_stream(device_);
    try {
      allocated_.wait(stream);
      for (size_t i = 0; i < sources.size(); ++i) {
        const Tensor& src = sources[i];
        if (!src.defined()) continue;
        ANVIL_CUDA_CHECK(cudaMemcpyAsync(tensors_[i].data_ptr(), src.data_ptr(),
                                         size_t(src.numel()) * src.element_size(),
                                         cudaMemcpyHostToDevice, stream));
        pinned_record_use(src.data_ptr(), stream);
      }
      copied_.record(stream);
    } catch (...) {
      cudaStreamSynchronize(stream);  // copies already queued must not outlive their memory
      throw;
    }
  }

  ~Upload() override {
    if (taken_) return;
    try {
      DeviceGuard guard(device_);
      // A capturing stream cannot wait on an event recorded outside the capture.
      if (stream_is_capturing()) {
        copied_.synchronize();
      } else {
        copied_.wait(current_stream());
      }
    } catch (...) {  // nothing to report to from a destructor
    }
  }

  std::vector<Tensor> take() override {
    ANVIL_CHECK(!taken_, DeviceError, "upload: the tensors were already taken");
    DeviceGuard guard(device_);
    refuse_in_capture("using an uploaded batch (data::DevicePrefetcher)");
    copied_.wait(current_stream());
    taken_ = true;
    return std::move(tensors_);
  }

 private:
  const int device_;
  std::vector<Tensor> tensors_;  // on the device
  Event allocated_;              // on the compute stream, after the destinations were allocated
  Event copied_;                 // on the copy stream, after the copies
  bool taken_ = false;
};

std::unique_ptr<backend::PendingUpload> upload_cuda(const std::vector<Tensor>& host,
                                                    Device device) {
  DeviceGuard guard(device.index);
  refuse_in_capture("a batch upload (data::DevicePrefetcher)");  // before any CUDA call
  return std::make_unique<Upload>(host, device);
}

ANVIL_REGISTER_KERNEL(backend::upload_kernels, CUDA, &upload_cuda);

}  // namespace
}  // namespace anvil::cuda
