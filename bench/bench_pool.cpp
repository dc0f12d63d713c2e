// Times anvil's CUDA pooling (its own kernels in src/backend/cuda/pool.cu, and cuDNN where
// pool_cudnn.cpp routes average pooling's forward) against cuDNN's legacy pooling called
// directly (cudnnPoolingForward / cudnnPoolingBackward) on the same NCHW shapes, in float32
// and bfloat16: the benchmark that keeps (or retires) our kernels. anvil's max pooling also writes
// the int64 argmax indices that its backward gathers through; cuDNN keeps none, so its max
// backward reads x, y and dy instead. Average pooling counts the padding, as torch's default
// (count_include_pad) and CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING both do.
//
//   build/bench/bench_pool [--runs=200] [--warm=20] [--reps=10]
//
// anvil is timed through its public ops (forward under NoGradGuard; backward as
// autograd::grad with the output gradient given, which launches the backward kernel alone).
// Each sample holds the stream on a host gate, queues start event, `reps` launches and stop
// event, then opens the gate: the events time the kernels back to back, not the host's
// launches. One JSON line per (shape, dtype, op, implementation) goes to stdout with the median
// µs per launch over `runs` samples; cuDNN's lines give the largest difference from anvil's
// result (max backward may differ where bfloat16 ties route the gradient to another element).
// The anvil/cuDNN ratio table goes to stderr.
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "anvil/anvil.h"

using namespace anvil;

namespace {

// anvil's compute stream: every op and library call runs on the calling thread's default one.
const cudaStream_t kStream = cudaStreamPerThread;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}
void check(cudnnStatus_t s, const char* what) {
  if (s != CUDNN_STATUS_SUCCESS)
    throw std::runtime_error(std::string(what) + ": " + cudnnGetErrorString(s));
}

template <class T, cudnnStatus_t (*Destroy)(T)>
struct CudnnDeleter {
  void operator()(T p) const { Destroy(p); }
};
template <class T, cudnnStatus_t (*Destroy)(T)>
using CudnnPtr = std::unique_ptr<std::remove_pointer_t<T>, CudnnDeleter<T, Destroy>>;

using CudnnHandle = CudnnPtr<cudnnHandle_t, cudnnDestroy>;
using TensorDesc = CudnnPtr<cudnnTensorDescriptor_t, cudnnDestroyTensorDescriptor>;

struct Event {
  cudaEvent_t e = nullptr;
  Event() { check(cudaEventCreate(&e), "cudaEventCreate"); }
  ~Event() { cudaEventDestroy(e); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
};

// Holds the stream (a host function that waits) until open(), so that what is queued behind it
// starts only once all of it is queued. The wait gives up after a few seconds, so that a launch
// that synchronises cannot hang the benchmark; timed_out() then says the sample is void.
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
  int runs = 200, warm = 20, reps = 10;
};

// Median µs per launch of `launch`, timed with CUDA events.
double median_us(const std::function<void()>& launch, const Options& o, const char* what) {
  for (int i = 0; i < o.warm; ++i) launch();
  check(cudaStreamSynchronize(kStream), "warm-up");
  Gate gate;
  Event start, stop;
  std::vector<double> us;
  for (int i = 0; i < o.runs; ++i) {
    gate.close();
    check(cudaEventRecord(start.e, kStream), "cudaEventRecord");
    for (int r = 0; r < o.reps; ++r) launch();
    check(cudaEventRecord(stop.e, kStream), "cudaEventRecord");
    gate.open();
    check(cudaEventSynchronize(stop.e), "cudaEventSynchronize");
    if (gate.timed_out())
      throw std::runtime_error(std::string(what) +
                               ": a launch waited for the stream (it synchronises), so the "
                               "gated timing cannot measure it");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start.e, stop.e), "cudaEventElapsedTime");
    us.push_back(1000.0 * ms / o.reps);
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  NoGradGuard no_grad;
  return max(abs(a.to(kFloat32) - b.to(kFloat32))).item<double>();
}

struct Case {
  Shape shape;
  Pair kernel, stride, padding;
  const char* note;
};

struct Ratio {
  std::string label;
  double anvil_us, cudnn_us;
};

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ',';
    r += std::to_string(s[i]);
  }
  r += ']';
  return r;
}

std::string pair_str(Pair p) { return shape_str({p[0], p[1]}); }

void print_line(const Case& c, DType dt, const char* op, const char* impl, double us,
                const Options& o, double diff = -1) {
  std::printf(
      "{\"bench\":\"pool\",\"shape\":%s,\"kernel\":%s,\"stride\":%s,\"padding\":%s,"
      "\"dtype\":\"%s\",\"op\":\"%s\",\"impl\":\"%s\",\"median_us\":%.2f,\"runs\":%d,"
      "\"reps\":%d",
      shape_str(c.shape).c_str(), pair_str(c.kernel).c_str(), pair_str(c.stride).c_str(),
      pair_str(c.padding).c_str(), dtype_name(dt), op, impl, us, o.runs, o.reps);
  if (diff >= 0) std::printf(",\"max_abs_diff_vs_anvil\":%.3g", diff);
  std::printf("}\n");
  std::fflush(stdout);
}

// cudnnPoolingForward/Backward and their descriptor are deprecated in cuDNN 9 in favour of the
// graph API, yet are still shipped and are what a library user would call for plain pooling;
// the warning is off only for this comparison.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

using PoolDesc = CudnnPtr<cudnnPoolingDescriptor_t, cudnnDestroyPoolingDescriptor>;

PoolDesc pool_desc(cudnnPoolingMode_t mode, const Case& c) {
  cudnnPoolingDescriptor_t p = nullptr;
  check(cudnnCreatePoolingDescriptor(&p), "cudnnCreatePoolingDescriptor");
  PoolDesc d(p);
  check(cudnnSetPooling2dDescriptor(p, mode, CUDNN_PROPAGATE_NAN, int(c.kernel[0]),
                                    int(c.kernel[1]), int(c.padding[0]), int(c.padding[1]),
                                    int(c.stride[0]), int(c.stride[1])),
        "cudnnSetPooling2dDescriptor");
  return d;
}

TensorDesc tensor_desc(const Tensor& t) {
  cudnnTensorDescriptor_t p = nullptr;
  check(cudnnCreateTensorDescriptor(&p), "cudnnCreateTensorDescriptor");
  TensorDesc d(p);
  cudnnDataType_t type = t.dtype() == kBFloat16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  check(cudnnSetTensor4dDescriptor(p, CUDNN_TENSOR_NCHW, type, int(t.size(0)), int(t.size(1)),
                                   int(t.size(2)), int(t.size(3))),
        "cudnnSetTensor4dDescriptor");
  return d;
}

// One pooling op (max or average) on one case and dtype: forward and backward, anvil and cuDNN.
void bench_op(cudnnHandle_t handle, bool is_max, const Case& c, DType dt, const Options& o,
              std::vector<Ratio>& ratios) {
  Device dev("cuda");
  auto pool = [&](const Tensor& t) {
    return is_max ? max_pool2d(t, c.kernel, c.stride, c.padding)
                  : avg_pool2d(t, c.kernel, c.stride, c.padding);
  };
  Tensor x = randn(c.shape, TensorOptions(kFloat32).device(dev)).to(dt);
  Tensor xg = x.detach().requires_grad_();
  Tensor y_rec = pool(xg);  // recorded once; every backward below reuses its graph
  Tensor y_anvil = y_rec.detach();
  Tensor dy = randn(y_anvil.shape(), TensorOptions(kFloat32).device(dev)).to(dt);
  Tensor dx_anvil = autograd::grad({y_rec}, {xg}, {dy}, true)[0];

  PoolDesc pd = pool_desc(
      is_max ? CUDNN_POOLING_MAX_DETERMINISTIC : CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING, c);
  Tensor y = empty_like(y_anvil), dx = empty_like(x);
  TensorDesc xd = tensor_desc(x), yd = tensor_desc(y);
  const float one = 1, zero = 0;  // float scalars for float and bfloat16 data alike
  auto cudnn_fwd = [&] {
    check(cudnnPoolingForward(handle, pd.get(), &one, xd.get(), x.data_ptr(), &zero, yd.get(),
                              y.data_ptr()),
          "cudnnPoolingForward");
  };
  auto cudnn_bwd = [&] {
    check(
        cudnnPoolingBackward(handle, pd.get(), &one, yd.get(), y.data_ptr(), yd.get(),
                             dy.data_ptr(), xd.get(), x.data_ptr(), &zero, xd.get(), dx.data_ptr()),
        "cudnnPoolingBackward");
  };
  std::string name = is_max ? "max_pool2d" : "avg_pool2d";
  std::string fwd = name + "_forward", bwd = name + "_backward";
  bool cudnn_ok = true;
  try {
    cudnn_fwd();
    cudnn_bwd();
    check(cudaStreamSynchronize(kStream), "cuDNN pooling");
  } catch (const std::runtime_error& e) {  // e.g. a dtype this cuDNN does not pool
    std::fprintf(stderr, "bench_pool: %s %s %s: cuDNN failed, timing anvil only: %s\n",
                 shape_str(c.shape).c_str(), dtype_name(dt), name.c_str(), e.what());
    cudnn_ok = false;
  }

  double a_fwd = median_us(
      [&] {
        NoGradGuard no_grad;
        pool(x);
      },
      o, fwd.c_str());
  print_line(c, dt, fwd.c_str(), "anvil", a_fwd, o);
  double c_fwd = cudnn_ok ? median_us(cudnn_fwd, o, fwd.c_str()) : 0;
  if (cudnn_ok) print_line(c, dt, fwd.c_str(), "cudnn", c_fwd, o, max_abs_diff(y, y_anvil));
  double a_bwd = median_us([&] { autograd::grad({y_rec}, {xg}, {dy}, true); }, o, bwd.c_str());
  print_line(c, dt, bwd.c_str(), "anvil", a_bwd, o);
  double c_bwd = cudnn_ok ? median_us(cudnn_bwd, o, bwd.c_str()) : 0;
  if (cudnn_ok) print_line(c, dt, bwd.c_str(), "cudnn", c_bwd, o, max_abs_diff(dx, dx_anvil));

  std::string label = shape_str(c.shape) + " " + c.note + " " + dtype_name(dt) + " ";
  ratios.push_back({label + fwd, a_fwd, c_fwd});
  ratios.push_back({label + bwd, a_bwd, c_bwd});
}

#pragma GCC diagnostic pop

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
      std::fprintf(stderr, "usage: %s [--runs=200] [--warm=20] [--reps=10]\n", argv[0]);
      return 2;
    }
  }
  if (o.runs < 1 || o.reps < 1 || o.warm < 0) {
    std::fprintf(stderr, "bench_pool: expected --runs >= 1, --reps >= 1, --warm >= 0\n");
    return 2;
  }
  if (!cuda_is_available()) {
    std::fprintf(stderr,
                 "bench_pool: no CUDA GPU on this machine (cuda_device_count() == 0); it times "
                 "GPU kernels, so run it on the GPU machine\n");
    return 1;
  }
  const std::vector<Case> cases = {
      {{128, 64, 24, 24}, {2, 2}, {2, 2}, {0, 0}, "k2s2"},    // the CNN benchmark's pool
      {{256, 64, 32, 32}, {3, 3}, {2, 2}, {1, 1}, "k3s2p1"},  // ResNet's stem pool
      {{256, 512, 4, 4}, {2, 2}, {2, 2}, {0, 0}, "k2s2"},     // a late, small-image stage
  };
  std::vector<Ratio> ratios;
  try {
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    std::fprintf(stderr, "bench_pool: %s, cuDNN %zu, runs=%d reps=%d warm=%d\n", prop.name,
                 cudnnGetVersion(), o.runs, o.reps, o.warm);
    cudnnHandle_t h = nullptr;
    check(cudnnCreate(&h), "cudnnCreate");
    CudnnHandle handle(h);
    check(cudnnSetStream(h, kStream), "cudnnSetStream");
    for (const Case& c : cases)
      for (DType dt : {kFloat32, kBFloat16})
        for (bool is_max : {true, false}) bench_op(h, is_max, c, dt, o, ratios);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_pool: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "\n%-58s %10s %10s %7s\n", "shape kernel dtype op", "anvil us", "cudnn us",
               "ratio");
  for (const Ratio& r : ratios) {
    if (r.cudnn_us > 0)
      std::fprintf(stderr, "%-58s %10.2f %10.2f %7.2f\n", r.label.c_str(), r.anvil_us, r.cudnn_us,
                   r.anvil_us / r.cudnn_us);
    else
      std::fprintf(stderr, "%-58s %10.2f %10s %7s\n", r.label.c_str(), r.anvil_us, "-", "-");
  }
  std::fprintf(stderr, "ratio = anvil / cuDNN (below 1: anvil faster)\n");
  return 0;
}
