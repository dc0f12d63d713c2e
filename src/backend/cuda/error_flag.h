// Device-side error flags: how a kernel that finds bad input (an index out of range, a zero
// integer divisor, a bad cross-entropy target) reports it without a host round trip, so that
// ops never synchronise and a training step can be captured into a CUDA graph.
//
// Each device has one error record in mapped page-locked host memory. The first kernel thread
// to find an error (in stream order: kernels of one stream run one after another) claims the
// record and fills it in; later errors are dropped until the record is cleared. A kernel that
// finds bad input never reads or writes out of bounds: it skips or zeroes the element. The
// host looks at the record only where it synchronises anyway (device -> host copies, so
// item() and .to(kCPU); anvil::cuda_synchronize()), raises the error the op's host check used
// to raise, with the same type and message, and clears the record. So, like PyTorch's device-
// side asserts, an error surfaces at the next synchronisation rather than at the op that
// caused it; unlike them, it leaves the context usable: the next op works.
//
// The claim is an atomicCAS on a word in device memory, not on the mapped record: GPU atomics
// on host memory are not guaranteed over PCIe. The winner writes the record with plain stores.
// The record is per device, shared by the threads' streams; errors raised concurrently on
// several streams of one device may be reported as only one of them.
#pragma once
#include <cstdint>

#include "backend/cuda/runtime.h"

namespace anvil::cuda {

enum class ErrorCode : int {
  None = 0,
  IndexOutOfRange = 1,   // value not in [0, bound) along dimension `extra`
  TargetOutOfRange = 2,  // a cross-entropy target not in [0, bound), not ignore_index `extra`
  DivisionByZero = 3,    // an integer division by zero
};

// Lives in mapped page-locked host memory; written by the device, read by the host after a
// synchronisation. `code` is written last.
struct ErrorRecord {
  int code;            // ErrorCode
  int op;              // the op, as an op_id()
  long long position;  // flat position of the bad element in the checked tensor
  long long value;     // the bad value
  long long bound;     // the exclusive upper bound the value broke
  long long extra;     // the dimension (index ops) or ignore_index (cross-entropy)
};

// What a kernel needs to report an error: passed by value.
struct ErrorSite {
  ErrorRecord* record = nullptr;  // device view of the device's record
  unsigned int* claim = nullptr;  // device memory: 0 while the record is free
  int op = 0;
};

// The site for `op` (a name the messages start with, e.g. "index_select") on cuda:`device`.
// Creates the device's record on first use: that first call synchronises (cudaHostAlloc,
// cudaMalloc), so it must not fall inside a graph capture; a warm-up step before capturing
// makes every later call free of CUDA calls.
ErrorSite error_site(int device, const char* op);

// Throws the error the record of cuda:`device` holds (IndexError or ValueError, with the
// message the op's host check gave), after clearing it; does nothing when it holds none. Call
// only after synchronising the calling thread's stream of `device` (the caller holds a
// DeviceGuard for it): the record is read without further synchronisation.
void raise_device_error(int device);

#ifdef __CUDACC__
// Records the error unless an earlier one holds the record.
__device__ inline void record_error(const ErrorSite& s, ErrorCode code, long long position,
                                    long long value, long long bound, long long extra) {
  if (atomicCAS(s.claim, 0u, 1u) != 0u) return;
  volatile ErrorRecord* r = s.record;
  r->op = s.op;
  r->position = position;
  r->value = value;
  r->bound = bound;
  r->extra = extra;
  __threadfence_system();  // the fields before the code, for any reader
  r->code = int(code);
}
#endif

}  // namespace anvil::cuda
