// The CUDA sweep of the layers' heavy ops against the CPU, every op x every dtype (see
// support/sweep.h): matrix products (mm, matmul's rank rules, bmm, linear, linear_act with its
// cuBLASLt epilogues), conv2d through cuDNN, max/avg/adaptive pooling, batch norm, layer norm
// and RMS norm, each with its input (and weight, bias) gradients through autograd. Skipped
// without a GPU.
#include <functional>

#include "support/sweep.h"

using namespace anvil;
using namespace anvil::test::sweep;

namespace {

// Random operands of the swept dtype: floats in [-1, 1], integers small enough that no
// product overflows (uint8 wraps alike on both devices).
Inputs operands(std::vector<Shape> shapes) {
  return [shapes](DType dt) {
    Tensors in;
    for (size_t i = 0; i < shapes.size(); ++i)
      in.push_back(values(shapes[i], 1 + i, dt, {-1, 1}, {-5, 5}));
    return in;
  };
}

std::vector<size_t> all_of(size_t n) {
  std::vector<size_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = i;
  return ids;
}

// ---- matrix products -----------------------------------------------------------------------

const std::vector<DType> kProductDTypes = kNumeric;  // integers by a plain kernel; no bool

Case product(const char* op, std::vector<Shape> shapes, Body body) {
  const size_t n = shapes.size();
  return {.op = op,
          .dtypes = kProductDTypes,
          .inputs = operands(std::move(shapes)),
          .body = std::move(body),
          .precision = Precision::Accumulating,
          .grads = all_of(n)};
}

// gelu is defined for floating inputs only, and the 16-bit GELU epilogue computes tanh
// approximately (see sweep::tolerance).
Case gelu_epilogue(Case c) {
  c.dtypes = kFloats;
  c.precision = Precision::Approximate;
  return c;
}

Body linear_act_with(Activation act) {
  return [act](const Args& a) -> Tensors {
    return {linear_act(a.in[0], a.in[1], a.in.size() > 2 ? a.in[2] : Tensor(), act)};
  };
}

std::vector<Case> product_cases() {
  auto mm2 = [](const Tensor& a, const Tensor& b) { return mm(a, b); };
  auto matmul2 = [](const Tensor& a, const Tensor& b) { return matmul(a, b); };
  const Shape x = {37, 61}, w = {53, 61}, b = {53};
  return {
      product("mm", {{37, 61}, {61, 53}}, binary_op(mm2)),
      // Transposed views reach cuBLASLt as transpose flags, without a copy.
      product("mm_transposed", {{61, 37}, {53, 61}},
              binary_op([](const Tensor& a, const Tensor& b) { return mm(a.t(), b.t()); })),
      product("matmul_dot", {{4099}, {4099}}, binary_op(matmul2)),
      product("matmul_vector_matrix", {{61}, {61, 53}}, binary_op(matmul2)),
      // Batch dims folded into rows, and broadcast batch dims.
      product("matmul_folded", {{3, 37, 29}, {29, 41}}, binary_op(matmul2)),
      product("matmul_broadcast", {{2, 1, 17, 29}, {3, 29, 13}}, binary_op(matmul2)),
      product("bmm", {{3, 37, 29}, {3, 29, 41}},
              binary_op([](const Tensor& a, const Tensor& b) { return bmm(a, b); })),
      product("linear", {x, w, b},
              ternary_op([](const Tensor& x, const Tensor& w, const Tensor& b) {
                return linear(x, w, b);
              })),
      product("linear_3d_no_bias", {{3, 13, 61}, w},
              binary_op([](const Tensor& x, const Tensor& w) { return linear(x, w); })),
      product("linear_act_none", {x, w, b}, linear_act_with(Activation::None)),
      product("linear_act_relu", {x, w, b}, linear_act_with(Activation::Relu)),
      product("linear_act_relu_no_bias", {x, w}, linear_act_with(Activation::Relu)),
      gelu_epilogue(
          product("linear_act_gelu_tanh", {x, w, b}, linear_act_with(Activation::GeluTanh))),
  };
}

// ---- convolution ---------------------------------------------------------------------------

struct ConvSpec {
  Pair stride = {1, 1}, padding = {0, 0}, dilation = {1, 1};
  int64_t groups = 1;
};

// conv2d of input, weight and (when there is a third shape) bias.
Case convolution(const char* op, std::vector<Shape> shapes, ConvSpec s) {
  const size_t n = shapes.size();
  return {.op = op,
          .dtypes = kFloats,
          .inputs = operands(std::move(shapes)),
          .body = [s](const Args& a) -> Tensors {
            Tensor bias = a.in.size() > 2 ? a.in[2] : Tensor();
            return {conv2d(a.in[0], a.in[1], bias, s.stride, s.padding, s.dilation, s.groups)};
          },
          .precision = Precision::Library,
          .grads = all_of(n)};
}

std::vector<Case> conv_cases() {
  return {
      convolution("conv2d", {{2, 3, 17, 19}, {4, 3, 3, 3}, {4}}, {.padding = {1, 1}}),
      convolution("conv2d_strided_dilated", {{2, 3, 17, 19}, {4, 3, 3, 3}},
                  {.stride = {2, 2}, .padding = {2, 2}, .dilation = {2, 2}}),
      convolution("conv2d_groups", {{2, 4, 13, 15}, {6, 2, 3, 3}, {6}},
                  {.padding = {1, 1}, .groups = 2}),
      convolution("conv2d_1x1", {{2, 3, 17, 19}, {5, 3, 1, 1}}, {}),
      convolution("conv2d_unbatched", {{3, 17, 19}, {4, 3, 3, 3}, {4}},
                  {.stride = {1, 2}, .padding = {1, 0}}),
  };
}

// ---- pooling -------------------------------------------------------------------------------

const Shape kImages = {2, 3, 23, 29};  // 4002 elements

Case pooling(const char* op, std::vector<DType> dtypes, Precision precision,
             std::function<Tensor(const Tensor&)> f) {
  return {.op = op,
          .dtypes = std::move(dtypes),
          .inputs = [](DType dt) { return Tensors{values(kImages, 1, dt)}; },
          .body = unary_op(std::move(f)),
          .precision = precision,
          .grads = {0}};
}

std::vector<Case> pool_cases() {
  // Max pooling picks elements (any numeric dtype); its gradient sums the upstream gradients
  // of overlapping windows, exactly (see on_eighths).
  const auto exact = Precision::Exact, elementwise = Precision::Elementwise;
  return {
      pooling("max_pool2d", kNumeric, exact,
              [](const Tensor& x) { return max_pool2d(x, {3, 3}, {2, 2}, {1, 1}); }),
      pooling("max_pool2d_dilated_ceil", kNumeric, exact,
              [](const Tensor& x) { return max_pool2d(x, {2, 3}, {2, 1}, {1, 1}, {2, 1}, true); }),
      pooling("avg_pool2d", kFloats, elementwise,
              [](const Tensor& x) { return avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}); }),
      pooling("avg_pool2d_ceil_excluding_padding", kFloats, elementwise,
              [](const Tensor& x) { return avg_pool2d(x, {3, 2}, {2, 2}, {1, 1}, true, false); }),
      pooling("adaptive_avg_pool2d", kFloats, elementwise,
              [](const Tensor& x) { return adaptive_avg_pool2d(x, {5, 7}); }),
      pooling("adaptive_avg_pool2d_global", kFloats, Precision::Accumulating,
              [](const Tensor& x) { return adaptive_avg_pool2d(x, {1, 1}); }),
  };
}

// ---- batch norm ----------------------------------------------------------------------------

// Input [8, 5, 11, 13] (5720 elements), weight, bias, running mean and running variance, all
// of the swept dtype.
Tensors batch_norm_inputs(DType dt) {
  const Shape c = {5};
  return {values({8, 5, 11, 13}, 1, dt, {-2, 3}), values(c, 2, dt, {0.5, 2}), values(c, 3, dt),
          values(c, 4, dt, {-0.5, 0.5}), values(c, 5, dt, {0.5, 2})};
}

std::vector<Case> batch_norm_cases() {
  const auto acc = Precision::Accumulating;
  return {
      // Training: batch statistics; the running ones are updated in place (compared too).
      {.op = "batch_norm_training",
       .dtypes = kFloats,
       .inputs = batch_norm_inputs,
       .body = [](const Args& a) -> Tensors {
         const Tensors& in = a.in;
         Tensor y = batch_norm(in[0], in[3], in[4], in[1], in[2], true, 0.1, 1e-5);
         return {y, in[3], in[4]};
       },
       .precision = acc,
       .grads = {0, 1, 2}},
      {.op = "batch_norm_inference",
       .dtypes = kFloats,
       .inputs = batch_norm_inputs,
       .body = [](const Args& a) -> Tensors {
         const Tensors& in = a.in;
         return {batch_norm(in[0], in[3], in[4], in[1], in[2], false)};
       },
       .precision = acc,
       .grads = {0, 1, 2}},
      // [N, C, L] without affine parameters or running statistics.
      {.op = "batch_norm_1d_plain",
       .dtypes = kFloats,
       .inputs = [](DType dt) { return Tensors{values({16, 7, 41}, 1, dt, {-2, 3})}; },
       .body = [](const Args& a) -> Tensors {
         return {batch_norm(a.in[0], Tensor(), Tensor(), Tensor(), Tensor(), true)};
       },
       .precision = acc,
       .grads = {0}},
  };
}

// ---- layer norm and RMS norm ---------------------------------------------------------------

// Input [6, 7, 97] (rows of an odd length: the scalar path, a warp per row) or [4, 1536] (a
// block per row, 16-byte accesses), and weight and bias of the row's length.
Inputs layer_norm_inputs(Shape x, int64_t n) {
  return [x, n](DType dt) {
    return Tensors{values(x, 1, dt, {-2, 3}), values({n}, 2, dt, {0.5, 2}), values({n}, 3, dt)};
  };
}

std::vector<Case> layer_norm_cases() {
  const auto acc = Precision::Accumulating;
  return {
      {.op = "layer_norm",
       .dtypes = kFloats,
       .inputs = layer_norm_inputs({6, 7, 97}, 97),
       .body = [](const Args& a) -> Tensors {
         return {layer_norm(a.in[0], {97}, a.in[1], a.in[2])};
       },
       .precision = acc,
       .grads = {0, 1, 2}},
      {.op = "layer_norm_long_rows",
       .dtypes = kFloats,
       .inputs = layer_norm_inputs({4, 1536}, 1536),
       .body = [](const Args& a) -> Tensors {
         return {layer_norm(a.in[0], {1536}, a.in[1], a.in[2])};
       },
       .precision = acc,
       .grads = {0, 1, 2}},
      // Two normalised dims, no affine parameters.
      {.op = "layer_norm_plain",
       .dtypes = kFloats,
       .inputs = layer_norm_inputs({6, 7, 97}, 97),
       .body = [](const Args& a) -> Tensors { return {layer_norm(a.in[0], {7, 97})}; },
       .precision = acc,
       .grads = {0}},
      {.op = "rms_norm",
       .dtypes = kFloats,
       .inputs = layer_norm_inputs({6, 7, 97}, 97),
       .body = [](const Args& a) -> Tensors { return {rms_norm(a.in[0], {97}, a.in[1])}; },
       .precision = acc,
       .grads = {0, 1}},
      {.op = "rms_norm_long_rows",
       .dtypes = kFloats,
       .inputs = layer_norm_inputs({4, 1536}, 1536),
       .body = [](const Args& a) -> Tensors {
         return {rms_norm(a.in[0], {1536}, a.in[1], 1e-6)};
       },
       .precision = acc,
       .grads = {0, 1}},
  };
}

std::vector<Case> all_cases() {
  std::vector<Case> all;
  for (auto family : {product_cases, conv_cases, pool_cases, batch_norm_cases, layer_norm_cases})
    for (Case& c : family()) all.push_back(std::move(c));
  return all;
}

class CudaSweepNN : public ::testing::TestWithParam<Param> {};

TEST_P(CudaSweepNN, CpuReference) { check_reference(GetParam()); }
TEST_P(CudaSweepNN, MatchesCpu) { check(GetParam()); }

INSTANTIATE_TEST_SUITE_P(, CudaSweepNN, ::testing::ValuesIn(params(all_cases())), name);

}  // namespace
