// What the backend does about work that cannot go into a CUDA graph: while the calling
// thread's stream is being captured, a host synchronisation or a copy from pageable host
// memory is refused with a DeviceError, and the capture is marked failed so that
// CUDAGraph::capture_end() reports it even when the caller caught the first error.
#pragma once
#include <string>

namespace anvil::cuda {

// Whether the calling thread's stream (stream.h) is being captured.
bool stream_is_capturing();
// Throws DeviceError naming `what` when the stream is being captured; marks the capture failed.
void refuse_in_capture(const char* what);
// The first refusal since the last call (empty if none), cleared by the call. Used by graph.cpp.
std::string take_capture_failure();

}  // namespace anvil::cuda
