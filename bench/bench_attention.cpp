// Times anvil's fused flash-attention CUDA kernels (src/backend/cuda/flash_attention_*.cu),
// called through their kernel tables: forward, backward, and forward + backward, in bfloat16
// on [B, H, T, D] with D = 64 and 128 and T = 512 ... 8192, causal and not. The shapes keep
// B * T = 16384 tokens and H * D = 2048 (H = 32 for D = 64, 16 for D = 128), as a GPT-style
// layer of width 2048 would see them; bench_attention_torch.py times PyTorch's
// scaled_dot_product_attention on the same shapes, so the two run side by side in one call:
//
//   build/bench/bench_attention [--runs=20] [--warm=3] [--reps=5] [--only-d=128]
//   python bench/bench_attention_torch.py [--runs=20] [--warm=3] [--reps=5]
//
// Each sample queues start event, `reps` calls and stop event; the median of `runs` samples
// gives the time per call. FLOPs as FlashAttention counts them: forward 4 B H T^2 D (half of it
// under the causal mask), backward 2.5 times the forward. One JSON line per (shape, causal,
// pass) on stdout; a table on stderr.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "anvil/anvil.h"
#include "backend/attention_kernels.h"

using namespace anvil;

namespace {

const cudaStream_t kStream = cudaStreamPerThread;  // anvil's compute stream

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
  int runs = 20, warm = 3, reps = 5;
  int only_d = 0;  // 0: both head dims
};

double median_ms(const std::function<void()>& call, const Options& o) {
  for (int i = 0; i < o.warm; ++i) call();
  check(cudaStreamSynchronize(kStream), "warm-up");
  Event start, stop;
  std::vector<double> ms;
  for (int i = 0; i < o.runs; ++i) {
    check(cudaEventRecord(start.e, kStream), "cudaEventRecord");
    for (int r = 0; r < o.reps; ++r) call();
    check(cudaEventRecord(stop.e, kStream), "cudaEventRecord");
    check(cudaEventSynchronize(stop.e), "cudaEventSynchronize");
    float t = 0;
    check(cudaEventElapsedTime(&t, start.e, stop.e), "cudaEventElapsedTime");
    ms.push_back(double(t) / o.reps);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

struct Row {
  std::string label;
  double fwd, bwd, both;  // TFLOP/s
};

void print_line(const backend::AttentionArgs& a, const char* pass, double ms, double flops) {
  std::printf(
      "{\"bench\":\"attention\",\"impl\":\"anvil_flash\",\"pass\":\"%s\",\"B\":%lld,\"H\":%lld,"
      "\"T\":%lld,\"D\":%lld,\"causal\":%s,\"dtype\":\"bfloat16\",\"median_ms\":%.4f,"
      "\"tflops\":%.1f}\n",
      pass, (long long)a.batch, (long long)a.heads, (long long)a.q_len, (long long)a.head_dim,
      a.causal ? "true" : "false", ms, flops / (ms * 1e-3) / 1e12);
  std::fflush(stdout);
}

Row bench_case(int64_t d, int64_t t, bool causal, const Options& o) {
  backend::AttentionArgs a;
  a.batch = 16384 / t;
  a.heads = 2048 / d;
  a.kv_heads = a.heads;
  a.q_len = a.kv_len = t;
  a.head_dim = d;
  a.scale = 1.0 / std::sqrt(double(d));
  a.causal = causal;
  const TensorOptions bf16 = TensorOptions(kBFloat16).device(kCUDA);
  const Shape shape{a.batch, a.heads, t, d};
  Tensor q = randn(shape, bf16), k = randn(shape, bf16), v = randn(shape, bf16);
  Tensor grad_out = randn(shape, bf16);
  Tensor out = empty(shape, bf16);
  Tensor lse = empty({a.batch, a.heads, t}, TensorOptions(kFloat32).device(kCUDA));
  Tensor dq = empty(shape, bf16), dk = empty(shape, bf16), dv = empty(shape, bf16);
  auto forward = [&] {
    if (!backend::flash_attention_kernels[kCUDA](a, out, lse, q, k, v))
      throw std::runtime_error("the flash-attention forward refused the case");
  };
  auto backward = [&] {
    if (!backend::flash_attention_backward_kernels[kCUDA](a, dq, dk, dv, grad_out, q, k, v, out,
                                                          lse))
      throw std::runtime_error("the flash-attention backward refused the case");
  };
  const double fwd_flops = 4.0 * a.batch * a.heads * double(t) * double(t) * d / (causal ? 2 : 1);
  const double f = median_ms(forward, o);
  print_line(a, "fwd", f, fwd_flops);
  forward();
  const double b = median_ms(backward, o);
  print_line(a, "bwd", b, 2.5 * fwd_flops);
  const double fb = median_ms(
      [&] {
        forward();
        backward();
      },
      o);
  print_line(a, "fwd+bwd", fb, 3.5 * fwd_flops);
  auto tf = [](double flops, double ms) { return flops / (ms * 1e-3) / 1e12; };
  char label[64];
  std::snprintf(label, sizeof label, "B%lld H%lld T%lld D%lld%s", (long long)a.batch,
                (long long)a.heads, (long long)t, (long long)d, causal ? " causal" : "");
  return {label, tf(fwd_flops, f), tf(2.5 * fwd_flops, b), tf(3.5 * fwd_flops, fb)};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--runs=", 0) == 0)
      o.runs = std::stoi(a.substr(7));
    else if (a.rfind("--warm=", 0) == 0)
      o.warm = std::stoi(a.substr(7));
    else if (a.rfind("--reps=", 0) == 0)
      o.reps = std::stoi(a.substr(7));
    else if (a.rfind("--only-d=", 0) == 0)
      o.only_d = std::stoi(a.substr(9));
    else {
      std::fprintf(stderr, "usage: %s [--runs=20] [--warm=3] [--reps=5] [--only-d=64|128]\n",
                   argv[0]);
      return 2;
    }
  }
  if (o.runs < 1 || o.reps < 1 || o.warm < 0) {
    std::fprintf(stderr, "bench_attention: expected --runs >= 1, --reps >= 1, --warm >= 0\n");
    return 2;
  }
  if (!cuda_is_available()) {
    std::fprintf(stderr, "bench_attention: no CUDA GPU on this machine; run it on the GPU one\n");
    return 1;
  }
  std::vector<Row> rows;
  try {
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    std::fprintf(stderr, "bench_attention: %s, runs=%d reps=%d warm=%d\n", prop.name, o.runs,
                 o.reps, o.warm);
    for (int64_t d : {64, 128}) {
      if (o.only_d && d != o.only_d) continue;
      for (bool causal : {false, true})
        for (int64_t t : {512, 1024, 2048, 4096, 8192}) rows.push_back(bench_case(d, t, causal, o));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_attention: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "\n%-32s %10s %10s %10s\n", "shape (bfloat16)", "fwd TF/s", "bwd TF/s",
               "f+b TF/s");
  for (const Row& r : rows)
    std::fprintf(stderr, "%-32s %10.1f %10.1f %10.1f\n", r.label.c_str(), r.fwd, r.bwd, r.both);
  return 0;
}
