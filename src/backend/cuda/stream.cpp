// Synchronising with the backend's stream (stream.h).
#include "backend/cuda/stream.h"

#include "backend/cuda/capture.h"
#include "backend/cuda/error_flag.h"
#include "backend/cuda/runtime.h"

namespace anvil::cuda {

void synchronize(int device) {
  DeviceGuard guard(device);
  refuse_in_capture("waiting for the device (item(), a copy to the CPU, cuda_synchronize())");
  ANVIL_CUDA_CHECK(cudaStreamSynchronize(current_stream()));
  raise_device_error(device);
}

}  // namespace anvil::cuda
