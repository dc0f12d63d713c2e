// Range checks of index tensors (gathers, scatters, cross-entropy targets) that stay on the
// device: a kernel finds the first bad position, a one-thread kernel records it in the error
// record (error_flag.h), and the op's own kernel can read the same word to leave its output
// alone. Nothing waits for the verdict; it surfaces at the next synchronisation.
#pragma once
#include "backend/cuda/error_flag.h"
#include "backend/cuda/launch.cuh"

namespace anvil::cuda {

constexpr unsigned long long kNoBadPosition = ~0ull;

// *first = the smallest position p with idx[p] outside [0, size) and != skip (when has_skip).
// (Smallest, as the CPU reports the first bad entry: the messages must agree.)
template <class I>
__global__ void first_out_of_range_kernel(const I* idx, int64_t n, int64_t size, bool has_skip,
                                          int64_t skip, unsigned long long* first) {
  ANVIL_GRID_STRIDE(p, n) {
    const int64_t v = int64_t(idx[p]);
    if ((v < 0 || v >= size) && !(has_skip && v == skip))
      atomicMin(first, static_cast<unsigned long long>(p));
  }
}

template <class I>
__global__ void report_out_of_range_kernel(const I* idx, const unsigned long long* first,
                                           ErrorSite site, ErrorCode code, int64_t size,
                                           int64_t extra) {
  const unsigned long long p = *first;
  if (p != kNoBadPosition)
    record_error(site, code, static_cast<long long>(p), static_cast<long long>(idx[p]), size,
                 extra);
}

// The verdict of a range check: `first` (device memory, null for an empty index) holds the
// first bad position or kNoBadPosition once the check's kernels have run, which is before
// any later work on the stream. `scratch` owns that word; dropping it after enqueueing the
// kernels that read it is safe, as the allocator reuses memory in stream order.
struct RangeCheck {
  Tensor scratch;
  const unsigned long long* first = nullptr;
};

// Enqueues the check of the contiguous index tensor against [0, size) (allowing `skip` when
// has_skip), reporting a bad entry as `code` with bound `size` and `extra` (the caller holds a
// DeviceGuard for the index's device).
template <class I>
RangeCheck check_index_range(const Tensor& index, int64_t size, const ErrorSite& site,
                             ErrorCode code, int64_t extra, bool has_skip = false,
                             int64_t skip = 0) {
  RangeCheck check;
  const int64_t n = index.numel();
  if (n == 0) return check;
  check.scratch = Tensor::empty({1}, TensorOptions(kInt64).device(index.device()));
  auto* first = static_cast<unsigned long long*>(check.scratch.data_ptr());
  ANVIL_CUDA_CHECK(cudaMemsetAsync(first, 0xff, sizeof(unsigned long long), current_stream()));
  const I* idx = static_cast<const I*>(index.data_ptr());
  first_out_of_range_kernel<I><<<blocks_for(n), kThreads, 0, current_stream()>>>(
      idx, n, size, has_skip, skip, first);
  ANVIL_CUDA_CHECK(cudaGetLastError());
  report_out_of_range_kernel<I><<<1, 1, 0, current_stream()>>>(idx, first, site, code, size,
                                                               extra);
  ANVIL_CUDA_CHECK(cudaGetLastError());
  check.first = first;
  return check;
}

// Whether a range check found a bad entry (in a kernel enqueued after it).
__device__ inline bool found_bad(const unsigned long long* first) {
  return first && *first != kNoBadPosition;
}

}  // namespace anvil::cuda
