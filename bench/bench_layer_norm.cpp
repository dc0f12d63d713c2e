// Times anvil's fused CUDA layer norm and RMS norm (src/backend/cuda/layer_norm.cu) against the
// same computation composed from anvil's existing ops (mean, var, sub, rsqrt, mul, add), on
// GPT-2's activation shape [16 * 1024, 768] in float32 and bfloat16: the forward alone and
// forward + backward (gradients of input, weight and bias). The benchmark that justifies the
// fused kernels.
//
//   build/bench/bench_layer_norm [--runs=100] [--warm=10] [--reps=10]
//
// Each sample holds the stream on a host gate, queues start event, `reps` iterations and stop
// event, then opens the gate, so the events time the GPU's work back to back, not the host's
// launches. One JSON line per (op, dtype, pass, implementation) goes to stdout with the median
// µs per iteration and the effective bandwidth: the bytes the fused kernels must move (forward:
// read x, write y; backward: read x and dy, write dx) over the time. The composed lines also
// give their largest difference from the fused result. A ratio table goes to stderr.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "anvil/anvil.h"

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

// Holds the stream (a host function that waits) until open(); gives up after a few seconds so
// that a launch that synchronises cannot hang the benchmark (timed_out() then voids the sample).
class Gate {
 public:
  void close() {
    {
      std::lock_guard lock(m_);
      open_ = false;
    }
    check(cudaLaunchHostFunc(kStream, &Gate::wait, this), "cudaLaunchHostFunc");
  }
  void open() {
    {
      std::lock_guard lock(m_);
      open_ = true;
    }
    cv_.notify_all();
  }
  bool timed_out() {
    std::lock_guard lock(m_);
    return timed_out_;
  }

 private:
  static void CUDART_CB wait(void* self) {
    auto* g = static_cast<Gate*>(self);
    std::unique_lock lock(g->m_);
    if (!g->cv_.wait_for(lock, std::chrono::seconds(5), [g] { return g->open_; }))
      g->timed_out_ = true;
  }
  std::mutex m_;
  std::condition_variable cv_;
  bool open_ = true, timed_out_ = false;
};

struct Options {
  int runs = 100, warm = 10, reps = 10;
};

double median_us(const std::function<void()>& iteration, const Options& o,
                 const std::string& what) {
  for (int i = 0; i < o.warm; ++i) iteration();
  check(cudaStreamSynchronize(kStream), "warm-up");
  Gate gate;
  Event start, stop;
  std::vector<double> us;
  for (int i = 0; i < o.runs; ++i) {
    gate.close();
    check(cudaEventRecord(start.e, kStream), "cudaEventRecord");
    for (int r = 0; r < o.reps; ++r) iteration();
    check(cudaEventRecord(stop.e, kStream), "cudaEventRecord");
    gate.open();
    check(cudaEventSynchronize(stop.e), "cudaEventSynchronize");
    if (gate.timed_out())
      throw std::runtime_error(what + ": an iteration waited for the stream, so the gated timing "
                                      "cannot measure it");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start.e, stop.e), "cudaEventElapsedTime");
    us.push_back(1000.0 * ms / o.reps);
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  NoGradGuard no_grad;
  return max(abs(sub(a.to(kFloat32), b.to(kFloat32)))).item<double>();
}

// The norms from existing ops, as a user would write them without the fused op.
Tensor composed_layer_norm(const Tensor& x, const Tensor& w, const Tensor& b) {
  Tensor centred = sub(x, mean(x, {-1}, true));
  Tensor rstd = rsqrt(add(var(x, {-1}, 0, true), 1e-5));
  return add(mul(mul(centred, rstd), w), b);
}
Tensor composed_rms_norm(const Tensor& x, const Tensor& w) {
  const double eps = std::numeric_limits<float>::epsilon();
  return mul(mul(x, rsqrt(add(mean(mul(x, x), {-1}, true), eps))), w);
}

struct Ratio {
  std::string label;
  double fused_us, composed_us;
};

void print_line(const char* op, const Shape& s, DType dt, const char* pass, const char* impl,
                double us, double gbps, const Options& o, double diff = -1) {
  std::printf(
      "{\"bench\":\"layer_norm\",\"op\":\"%s\",\"shape\":[%lld,%lld],\"dtype\":\"%s\","
      "\"pass\":\"%s\",\"impl\":\"%s\",\"median_us\":%.2f,\"gb_per_s\":%.1f,\"runs\":%d,"
      "\"reps\":%d",
      op, (long long)s[0], (long long)s[1], dtype_name(dt), pass, impl, us, gbps, o.runs, o.reps);
  if (diff >= 0) std::printf(",\"max_abs_diff_vs_fused\":%.3g", diff);
  std::printf("}\n");
  std::fflush(stdout);
}

// One norm (layer norm with weight and bias, or RMS norm with weight) on one dtype.
void bench_norm(bool rms, const Shape& shape, DType dt, const Options& o,
                std::vector<Ratio>& ratios) {
  const Device dev("cuda");
  const int64_t n = shape[1];
  const TensorOptions f32 = TensorOptions(kFloat32).device(dev);
  Tensor x = randn(shape, f32).to(dt), dy = randn(shape, f32).to(dt);
  Tensor w = add(mul(randn({n}, f32), 0.1), 1.0).to(dt), b = mul(randn({n}, f32), 0.1).to(dt);
  Tensor xg = x.detach().requires_grad_(), wg = w.detach().requires_grad_();
  Tensor bg = b.detach().requires_grad_();
  auto fused = [&](const Tensor& a, const Tensor& wt, const Tensor& bt) {
    return rms ? rms_norm(a, {n}, wt) : layer_norm(a, {n}, wt, bt);
  };
  auto composed = [&](const Tensor& a, const Tensor& wt, const Tensor& bt) {
    return rms ? composed_rms_norm(a, wt) : composed_layer_norm(a, wt, bt);
  };
  auto leaves = [&]() -> std::vector<Tensor> {
    return rms ? std::vector<Tensor>{xg, wg} : std::vector<Tensor>{xg, wg, bg};
  };
  const char* op = rms ? "rms_norm" : "layer_norm";
  const double elems = double(shape[0]) * double(n), size = double(dtype_size(dt));
  const double fwd_bytes = 2 * elems * size, fwd_bwd_bytes = 5 * elems * size;
  auto gbps = [](double bytes, double us) { return bytes / (us * 1e3); };

  Tensor y_fused, y_composed;
  {
    NoGradGuard no_grad;
    y_fused = fused(x, w, b);
    y_composed = composed(x, w, b);
  }
  const double diff = max_abs_diff(y_composed, y_fused);
  const double f_fwd = median_us(
      [&] {
        NoGradGuard no_grad;
        fused(x, w, b);
      },
      o, std::string(op) + " fused forward");
  const double c_fwd = median_us(
      [&] {
        NoGradGuard no_grad;
        composed(x, w, b);
      },
      o, std::string(op) + " composed forward");
  const double f_all = median_us(
      [&] { autograd::grad({fused(xg, wg, bg)}, leaves(), {dy}); }, o,
      std::string(op) + " fused forward+backward");
  const double c_all = median_us(
      [&] { autograd::grad({composed(xg, wg, bg)}, leaves(), {dy}); }, o,
      std::string(op) + " composed forward+backward");
  print_line(op, shape, dt, "forward", "fused", f_fwd, gbps(fwd_bytes, f_fwd), o);
  print_line(op, shape, dt, "forward", "composed", c_fwd, gbps(fwd_bytes, c_fwd), o, diff);
  print_line(op, shape, dt, "forward+backward", "fused", f_all, gbps(fwd_bwd_bytes, f_all), o);
  print_line(op, shape, dt, "forward+backward", "composed", c_all, gbps(fwd_bwd_bytes, c_all), o);
  const std::string label = std::string(op) + " " + dtype_name(dt) + " ";
  ratios.push_back({label + "forward", f_fwd, c_fwd});
  ratios.push_back({label + "forward+backward", f_all, c_all});
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
    else {
      std::fprintf(stderr, "usage: %s [--runs=100] [--warm=10] [--reps=10]\n", argv[0]);
      return 2;
    }
  }
  if (o.runs < 1 || o.reps < 1 || o.warm < 0) {
    std::fprintf(stderr, "bench_layer_norm: expected --runs >= 1, --reps >= 1, --warm >= 0\n");
    return 2;
  }
  if (!cuda_is_available()) {
    std::fprintf(stderr, "bench_layer_norm: no CUDA GPU on this machine; it times GPU kernels, "
                         "so run it on the GPU machine\n");
    return 1;
  }
  const Shape gpt2 = {16 * 1024, 768};  // batch 16 x 1024 tokens x 768 channels
  std::vector<Ratio> ratios;
  try {
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    std::fprintf(stderr, "bench_layer_norm: %s, runs=%d reps=%d warm=%d\n", prop.name, o.runs,
                 o.reps, o.warm);
    for (DType dt : {kBFloat16, kFloat32})
      for (bool rms : {false, true}) bench_norm(rms, gpt2, dt, o, ratios);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_layer_norm: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "\n%-40s %11s %11s %7s\n", "op dtype pass", "fused us", "composed us",
               "ratio");
  for (const Ratio& r : ratios)
    std::fprintf(stderr, "%-40s %11.2f %11.2f %7.2f\n", r.label.c_str(), r.fused_us,
                 r.composed_us, r.fused_us / r.composed_us);
  std::fprintf(stderr, "ratio = fused / composed (below 1: the fused kernels are faster)\n");
  return 0;
}
