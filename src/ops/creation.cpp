// Creation functions: constants, ranges, identity, random draws, host data.
#include "anvil/ops/creation.h"

#include <cmath>
#include <cstring>

#include "backend/random_kernels.h"
#include "backend/sequence_kernels.h"
#include "ops/checks.h"

namespace anvil {

Tensor empty(const Shape& shape, TensorOptions opts) { return Tensor::empty(shape, opts); }

Tensor full(const Shape& shape, Scalar value, TensorOptions opts) {
  Tensor t = Tensor::empty(shape, opts.requires_grad(false));
  t.fill_(value);
  if (opts.requires_grad_) t.requires_grad_(true);
  return t;
}
Tensor zeros(const Shape& shape, TensorOptions opts) { return full(shape, 0, opts); }
Tensor ones(const Shape& shape, TensorOptions opts) { return full(shape, 1, opts); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.options()); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.options()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.options()); }
Tensor full_like(const Tensor& t, Scalar value) { return full(t.shape(), value, t.options()); }

namespace {
// Written on opts' device: a CUDA graph can capture it (a copy from the host it cannot).
Tensor fill_sequence(int64_t n, const backend::SequenceArgs& args, const TensorOptions& opts) {
  Tensor r = Tensor::empty({n}, TensorOptions(opts.dtype_).device(opts.device_));
  backend::sequence_kernels[r.device()](args, r);
  if (opts.requires_grad_) r.requires_grad_(true);
  return r;
}
}  // namespace

Tensor arange(Scalar end) { return arange(0, end, 1); }

Tensor arange(Scalar start, Scalar end, Scalar step) {
  bool fl = start.is_floating() || end.is_floating() || step.is_floating();
  return arange(start, end, step, TensorOptions(fl ? kFloat32 : kInt64));
}

Tensor arange(Scalar start, Scalar end, Scalar step, TensorOptions opts) {
  double s = start.to_double(), e = end.to_double(), st = step.to_double();
  ANVIL_CHECK(st != 0, ValueError, "arange: step must be nonzero");
  ANVIL_CHECK((st > 0 && e >= s) || (st < 0 && e <= s), ValueError,
              "arange: upper bound and larger bound inconsistent with step sign (start ", s,
              ", end ", e, ", step ", st, ")");
  int64_t n = int64_t(std::ceil((e - s) / st));
  return fill_sequence(n, {s, st, e, false}, opts);
}

Tensor linspace(double start, double end, int64_t steps, TensorOptions opts) {
  ANVIL_CHECK(steps >= 0, ValueError, "linspace: number of steps must be non-negative, got ", steps);
  double step = steps > 1 ? (end - start) / double(steps - 1) : 0;
  // Fill from both ends, as PyTorch does, so the last value is exactly `end`.
  return fill_sequence(steps, {start, step, end, true}, opts);
}

Tensor eye(int64_t n, int64_t m, TensorOptions opts) {
  if (m < 0) m = n;
  ANVIL_CHECK(n >= 0, ValueError, "eye: n must be non-negative, got ", n);
  Tensor t = zeros({n, m}, opts.requires_grad(false));
  // The diagonal is a strided view: step m + 1 through the storage.
  Tensor::make_view(t.storage(), {std::min(n, m)}, {m + 1}, 0, t.dtype()).fill_(1);
  if (opts.requires_grad_) t.requires_grad_(true);
  return t;
}

namespace {
Tensor random_fill(Tensor t, backend::RandomArgs args, Generator* gen) {
  Generator& g = gen ? *gen : default_generator(t.device());
  Generator::Draw draw = g.reserve_draw(backend::random_blocks(args, t.dtype(), t.numel()));
  args.seed = draw.seed;
  args.first_block = draw.first_block;
  args.device_state = draw.device_state;
  Tensor dense = t.is_contiguous() ? t : Tensor::empty(t.shape(), t.options());
  backend::random_kernels[t.device()](args, dense);
  if (!dense.is_same(t)) t.copy_(dense);
  return t;
}

Tensor random_new(const Shape& shape, TensorOptions opts, backend::RandomArgs args,
                  Generator* gen, const char* op) {
  if (args.dist != backend::RandomDist::Integer)
    ANVIL_CHECK(is_floating(opts.dtype_), DTypeError, op,
                ": expected a floating-point dtype, got ", dtype_name(opts.dtype_));
  Tensor t = random_fill(Tensor::empty(shape, opts.requires_grad(false)), args, gen);
  if (opts.requires_grad_) t.requires_grad_(true);
  return t;
}
}  // namespace

Tensor rand(const Shape& shape, TensorOptions opts, Generator* gen) {
  return random_new(shape, opts, {backend::RandomDist::Uniform, 0, 0, 0, 1}, gen, "rand");
}
Tensor randn(const Shape& shape, TensorOptions opts, Generator* gen) {
  return random_new(shape, opts, {backend::RandomDist::Normal, 0, 0, 0, 1}, gen, "randn");
}
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions opts, Generator* gen) {
  ANVIL_CHECK(high > low, ValueError, "randint: expected low < high, got low=", low,
              " high=", high);
  ANVIL_CHECK(opts.dtype_ != kBool, DTypeError, "randint: bool is not a valid dtype");
  return random_new(shape, opts, {backend::RandomDist::Integer, 0, 0, double(low), double(high)},
                    gen, "randint");
}
Tensor rand_like(const Tensor& t, Generator* gen) { return rand(t.shape(), t.options(), gen); }
Tensor randn_like(const Tensor& t, Generator* gen) { return randn(t.shape(), t.options(), gen); }

Tensor& uniform_(Tensor& t, double from, double to, Generator* gen) {
  ops::check_inplace(t, "uniform_");
  ops::check_floating(t, "uniform_");
  random_fill(t, {backend::RandomDist::Uniform, 0, 0, from, to}, gen);
  return t;
}
Tensor& normal_(Tensor& t, double mean, double std, Generator* gen) {
  ops::check_inplace(t, "normal_");
  ops::check_floating(t, "normal_");
  ANVIL_CHECK(std >= 0, ValueError, "normal_: std must be non-negative, got ", std);
  random_fill(t, {backend::RandomDist::Normal, 0, 0, mean, std}, gen);
  return t;
}

template <class T>
Tensor tensor(const std::vector<T>& values, const Shape& shape_in, TensorOptions opts) {
  Shape shape = shape_in.empty() && values.size() != 1 ? Shape{int64_t(values.size())} : shape_in;
  ANVIL_CHECK(numel(shape) == int64_t(values.size()), ShapeError, "tensor: ", values.size(),
              " values do not fill shape ", to_string(shape));
  Tensor host = Tensor::empty(shape, TensorOptions(dtype_v<T>));
  if constexpr (std::is_same_v<T, bool>) {
    bool* p = host.data<bool>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  } else if (!values.empty()) {
    std::memcpy(host.data_ptr(), values.data(), values.size() * sizeof(T));
  }
  DType dt = opts.dtype_set_ ? opts.dtype_ : dtype_v<T>;
  Tensor r = host.to(opts.device_, dt);
  if (opts.requires_grad_) r.requires_grad_(true);
  return r;
}
template Tensor tensor<float>(const std::vector<float>&, const Shape&, TensorOptions);
template Tensor tensor<double>(const std::vector<double>&, const Shape&, TensorOptions);
template Tensor tensor<int32_t>(const std::vector<int32_t>&, const Shape&, TensorOptions);
template Tensor tensor<int64_t>(const std::vector<int64_t>&, const Shape&, TensorOptions);
template Tensor tensor<uint8_t>(const std::vector<uint8_t>&, const Shape&, TensorOptions);
template Tensor tensor<bool>(const std::vector<bool>&, const Shape&, TensorOptions);
template Tensor tensor<float16>(const std::vector<float16>&, const Shape&, TensorOptions);
template Tensor tensor<bfloat16>(const std::vector<bfloat16>&, const Shape&, TensorOptions);

Tensor scalar_tensor(Scalar value, TensorOptions opts) { return full({}, value, opts); }

Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device,
                 std::function<void(void*)> release, const Strides& strides) {
  Strides st = strides.empty() ? contiguous_strides(shape) : strides;
  ANVIL_CHECK(st.size() == shape.size(), ShapeError, "from_blob: ", st.size(),
              " strides for shape ", to_string(shape));
  int64_t extent = 1;  // elements from the first to one past the last
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] == 0) extent = 0;
  if (extent) {
    for (size_t i = 0; i < shape.size(); ++i) extent += (shape[i] - 1) * st[i];
  }
  auto storage = std::make_shared<Storage>(data, size_t(extent) * dtype_size(dtype), device,
                                           std::move(release));
  return Tensor::make_view(std::move(storage), shape, st, 0, dtype);
}

}  // namespace anvil
