// Times the CUDA element-wise kernels' vector walk (16-byte loads and stores, backend/cuda/vec.cuh)
// against the scalar walk they had before it (one element per thread and access), which the
// benchmarking switch backend/cuda/scalar_elementwise.h forces, on the ops a GPT step is full
// of: residual adds, mul, the bfloat16 -> float32 cast, gelu-tanh's backward and dropout's
// forward, on dense 16M-element tensors.
//
//   build/bench/bench_elementwise [--runs=50] [--reps=10] [--warm=5] [--n=16777216]
//
// anvil is timed through its public ops (forward under NoGradGuard; gelu's backward as
// autograd::grad with the output gradient given, which launches the backward kernel alone).
// Each sample records a start event, `reps` launches and a stop event on anvil's stream; the
// median µs per launch over `runs` samples is reported with the bandwidth it implies (bytes each
// launch must read and write, over its time). One JSON line per (op, dtype, walk) goes to
// stdout; the table of both walks and their ratio to stderr. Every case also checks that the two
// walks give the same bits.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "anvil/anvil.h"
#include "backend/cuda/scalar_elementwise.h"

using namespace anvil;

namespace {

// anvil's compute stream: every op runs on the calling thread's default one.
const cudaStream_t kStream = cudaStreamPerThread;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

struct Event {
  cudaEvent_t e = nullptr;
  Event() { check(cudaEventCreate(&e), "cudaEventCreate"); }
  ~Event() { cudaEventDestroy(e); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
};

struct Options {
  int runs = 50, reps = 10, warm = 5;
  int64_t n = int64_t(1) << 24;
};

// Median µs per launch of `launch`, timed with CUDA events.
double median_us(const std::function<void()>& launch, const Options& o) {
  for (int i = 0; i < o.warm; ++i) launch();
  check(cudaStreamSynchronize(kStream), "warm-up");
  Event start, stop;
  std::vector<double> us;
  for (int i = 0; i < o.runs; ++i) {
    check(cudaEventRecord(start.e, kStream), "cudaEventRecord");
    for (int r = 0; r < o.reps; ++r) launch();
    check(cudaEventRecord(stop.e, kStream), "cudaEventRecord");
    check(cudaEventSynchronize(stop.e), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start.e, stop.e), "cudaEventElapsedTime");
    us.push_back(1000.0 * ms / o.reps);
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

bool same_bits(const Tensor& a, const Tensor& b) {
  Tensor x = a.cpu().contiguous(), y = b.cpu().contiguous();
  return x.dtype() == y.dtype() && x.numel() == y.numel() &&
         std::memcmp(x.data_ptr(), y.data_ptr(), size_t(x.numel()) * x.element_size()) == 0;
}

struct Case {
  std::string op;
  DType dtype;
  double bytes;                 // read and written by one launch
  std::function<Tensor()> run;  // one launch; returns its result for the bit check
};

struct Row {
  std::string label;
  double scalar_us, vector_us, bytes;
  bool same;
};

void print_line(const Case& c, const char* walk, double us, const Options& o) {
  std::printf(
      "{\"bench\":\"elementwise\",\"op\":\"%s\",\"dtype\":\"%s\",\"n\":%lld,\"walk\":\"%s\","
      "\"median_us\":%.2f,\"gb_per_s\":%.1f,\"runs\":%d,\"reps\":%d}\n",
      c.op.c_str(), dtype_name(c.dtype), static_cast<long long>(o.n), walk, us, c.bytes / us / 1e3,
      o.runs, o.reps);
  std::fflush(stdout);
}

Row bench_case(const Case& c, const Options& o) {
  cuda::set_scalar_elementwise(true);
  const Tensor scalar_out = c.run();
  const double scalar_us = median_us([&] { c.run(); }, o);
  cuda::set_scalar_elementwise(false);
  const Tensor vector_out = c.run();
  const double vector_us = median_us([&] { c.run(); }, o);
  print_line(c, "scalar", scalar_us, o);
  print_line(c, "vector", vector_us, o);
  return {c.op + " " + dtype_name(c.dtype), scalar_us, vector_us, c.bytes,
          same_bits(scalar_out, vector_out)};
}

std::vector<Case> cases(const Options& o) {
  const Device dev("cuda");
  const int64_t n = o.n;
  auto input = [&](DType dt, uint64_t seed) {
    Generator g(seed);
    return randn({n}, TensorOptions(kFloat32).device(dev), &g).to(dt);
  };
  std::vector<Case> all;
  for (DType dt : {kBFloat16, kFloat32}) {
    const double size = double(dtype_size(dt));
    Tensor a = input(dt, 1), b = input(dt, 2);
    all.push_back({"add", dt, 3 * size * double(n), [a, b] {
                     NoGradGuard no_grad;
                     return add(a, b);
                   }});
    all.push_back({"mul", dt, 3 * size * double(n), [a, b] {
                     NoGradGuard no_grad;
                     return mul(a, b);
                   }});
  }
  {
    Tensor x = input(kBFloat16, 3);
    all.push_back({"cast_to_float32", kBFloat16, 6.0 * double(n), [x] {
                     NoGradGuard no_grad;
                     return x.to(kFloat32);
                   }});
  }
  for (DType dt : {kBFloat16, kFloat32}) {
    const double size = double(dtype_size(dt));
    Tensor x = input(dt, 4).requires_grad_(), dy = input(dt, 5);
    Tensor y = gelu(x, "tanh");  // recorded once; every backward below reuses its graph
    // Reads the output gradient and the saved input, writes the input gradient.
    all.push_back({"gelu_tanh_backward", dt, 3 * size * double(n),
                   [x, y, dy] { return autograd::grad({y}, {x}, {dy}, true)[0]; }});
  }
  for (DType dt : {kBFloat16, kFloat32}) {
    const double size = double(dtype_size(dt));
    Tensor x = input(dt, 6);
    // Each run draws from a generator of the same seed, so the two walks draw the same mask.
    all.push_back({"dropout", dt, (2 * size + 1) * double(n), [x] {
                     NoGradGuard no_grad;
                     Generator g(7);
                     return dropout(x, 0.1, true, &g);
                   }});
  }
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--runs=", 0) == 0)
      o.runs = std::stoi(a.substr(7));
    else if (a.rfind("--reps=", 0) == 0)
      o.reps = std::stoi(a.substr(7));
    else if (a.rfind("--warm=", 0) == 0)
      o.warm = std::stoi(a.substr(7));
    else if (a.rfind("--n=", 0) == 0)
      o.n = std::stoll(a.substr(4));
    else {
      std::fprintf(stderr, "usage: %s [--runs=50] [--reps=10] [--warm=5] [--n=16777216]\n",
                   argv[0]);
      return 2;
    }
  }
  if (o.runs < 1 || o.reps < 1 || o.warm < 0 || o.n < 1) {
    std::fprintf(stderr, "bench_elementwise: expected --runs, --reps, --n >= 1, --warm >= 0\n");
    return 2;
  }
  if (!cuda_is_available()) {
    std::fprintf(stderr,
                 "bench_elementwise: no CUDA GPU on this machine (cuda_device_count() == 0); it "
                 "times GPU kernels, so run it on the GPU machine\n");
    return 1;
  }
  std::vector<Row> rows;
  try {
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    std::fprintf(stderr, "bench_elementwise: %s, n=%lld runs=%d reps=%d warm=%d\n", prop.name,
                 static_cast<long long>(o.n), o.runs, o.reps, o.warm);
    for (const Case& c : cases(o)) rows.push_back(bench_case(c, o));
  } catch (const std::exception& e) {
    cuda::set_scalar_elementwise(false);
    std::fprintf(stderr, "bench_elementwise: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "\n%-30s %10s %10s %10s %10s %7s %5s\n", "op dtype", "scalar us",
               "vector us", "scalar GB/s", "vector GB/s", "ratio", "bits");
  bool all_same = true;
  for (const Row& r : rows) {
    std::fprintf(stderr, "%-30s %10.2f %10.2f %11.1f %11.1f %7.2f %5s\n", r.label.c_str(),
                 r.scalar_us, r.vector_us, r.bytes / r.scalar_us / 1e3, r.bytes / r.vector_us / 1e3,
                 r.scalar_us / r.vector_us, r.same ? "same" : "DIFF");
    all_same = all_same && r.same;
  }
  std::fprintf(stderr,
               "ratio = scalar / vector time (above 1: the vector walk is faster); bits: whether "
               "both walks gave the same result\n");
  return all_same ? 0 : 1;
}
