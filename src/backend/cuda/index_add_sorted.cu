// Sort-based deterministic index_add (see index_add_sorted.h).
#include <cub/device/device_radix_sort.cuh>

#include "backend/cuda/index_add_sorted.h"
#include "backend/cuda/index_check.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/stream.h"

namespace anvil::cuda {
namespace {

__global__ void positions_kernel(int32_t* p, int64_t k) {
  ANVIL_GRID_STRIDE(i, k) p[i] = int32_t(i);
}

// Block x: sorted slot s; only the first slot of each run of equal keys works, adding the run's
// source rows in their original order. Block y strides over the outer dim, threads over inner.
template <class T, class I>
__global__ void add_runs_kernel(T* out, const T* src, const I* keys, const int32_t* rows,
                                int64_t outer, int64_t k, int64_t inner, int64_t n,
                                const unsigned long long* bad) {
  if (found_bad(bad)) return;
  const int64_t s = blockIdx.x;
  const I key = keys[s];
  if (s > 0 && keys[s - 1] == key) return;
  int64_t end = s + 1;
  while (end < k && keys[end] == key) ++end;
  for (int64_t o = blockIdx.y; o < outer; o += gridDim.y)
    for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) {
      compute_t<T> acc = 0;
      for (int64_t r = s; r < end; ++r) acc += up(src[(o * k + rows[r]) * inner + i]);
      T& y = out[(o * n + int64_t(key)) * inner + i];
      y = down<T>(up(y) + acc);
    }
}

template <class I>
int key_bits(int64_t n) {  // the bits of indices in [0, n); others are bad and write nothing
  int bits = 1;
  while (bits < int(8 * sizeof(I)) && (int64_t(1) << bits) < n) ++bits;
  return bits;
}

template <class T, class I>
void run(const Tensor& out, const Tensor& src, const Tensor& index, int64_t outer, int64_t k,
         int64_t inner, int64_t n, const unsigned long long* bad) {
  const Device d = index.device();
  auto bytes = [&](int64_t count) { return Tensor::empty({count}, TensorOptions(kUInt8).device(d)); };
  Tensor keys = bytes(k * int64_t(sizeof(I))), rows_in = bytes(k * 4), rows = bytes(k * 4);
  positions_kernel<<<blocks_for(k), kThreads, 0, current_stream()>>>(
      static_cast<int32_t*>(rows_in.data_ptr()), k);
  const I* keys_in = static_cast<const I*>(index.data_ptr());
  I* keys_out = static_cast<I*>(keys.data_ptr());
  const int32_t* r_in = static_cast<const int32_t*>(rows_in.data_ptr());
  int32_t* r_out = static_cast<int32_t*>(rows.data_ptr());
  const int bits = key_bits<I>(n);
  size_t temp_bytes = 0;
  ANVIL_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys_in, keys_out, r_in,
                                                   r_out, k, 0, bits, current_stream()));
  Tensor temp = bytes(int64_t(std::max<size_t>(temp_bytes, 1)));
  ANVIL_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.data_ptr(), temp_bytes, keys_in, keys_out,
                                                   r_in, r_out, k, 0, bits, current_stream()));
  const int threads = int(std::min<int64_t>(kThreads, (inner + 31) / 32 * 32));
  const dim3 grid(unsigned(k), unsigned(std::min<int64_t>(outer, 65535)));
  add_runs_kernel<T, I><<<grid, threads, 0, current_stream()>>>(
      static_cast<T*>(out.data_ptr()), static_cast<const T*>(src.data_ptr()), keys_out, r_out,
      outer, k, inner, n, bad);
  ANVIL_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void index_add_sorted(const Tensor& out, const Tensor& src, const Tensor& index, int64_t outer,
                      int64_t k, int64_t inner, int64_t n, const unsigned long long* bad) {
  if (k == 0 || outer == 0 || inner == 0) return;
  ANVIL_CHECK(k <= INT32_MAX, ValueError, "index_add: deterministic mode takes at most 2^31 - 1 "
              "indices, got ", k);
  ANVIL_DISPATCH_FLOAT(out.dtype(), "index_add", [&] {
    using T = dev_t<scalar_t>;
    ANVIL_DISPATCH_INDEX(index.dtype(), "index_add",
                         [&] { run<T, scalar_t>(out, src, index, outer, k, inner, n, bad); });
  });
}

}  // namespace anvil::cuda
