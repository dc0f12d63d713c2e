// The CUDA sweep of the gathers, scatters and joins against the CPU, every op x every dtype
// (see support/sweep.h): embedding (with padding_idx), index_select, gather and scatter_add
// along several dims with int64 and int32 indices, the index dtypes themselves, one_hot, cat
// and stack, with gradients (index_add and scatter_add on the way back). Duplicate indices
// throughout. Skipped without a GPU.
#include <functional>

#include "support/sweep.h"

using namespace anvil;
using namespace anvil::test::sweep;

namespace {

const Shape kShape = {37, 111};  // 4107 elements

// Data of the swept dtype and indices in [0, n) of `index_dtype`.
Inputs indexed(Shape data, Shape index, int64_t n, DType index_dtype = kInt64) {
  return [=](DType dt) {
    return Tensors{values(data, 1, dt), integers(index, 2, index_dtype, 0, n)};
  };
}

// Moves and picks: exact, and so are the gradients' sums of duplicates (see on_eighths).
Case gathering(const char* op, Inputs inputs, Body body) {
  return {.op = op,
          .dtypes = kAllDTypes,
          .inputs = std::move(inputs),
          .body = std::move(body),
          .precision = Precision::Exact,
          .grads = {0}};
}

std::vector<Case> gather_cases() {
  // 305 lookups into 97 rows: about three of each.
  const Inputs table = indexed({97, 43}, {5, 61}, 97);
  return {
      gathering("embedding", table,
                binary_op([](const Tensor& w, const Tensor& i) { return embedding(w, i); })),
      gathering("embedding_padding_idx", table,
                binary_op([](const Tensor& w, const Tensor& i) { return embedding(w, i, 3); })),
      gathering("index_select", indexed(kShape, {53}, kShape[0]),
                binary_op([](const Tensor& a, const Tensor& i) { return index_select(a, 0, i); })),
      gathering("index_select_dim1_int32", indexed(kShape, {71}, kShape[1], kInt32),
                binary_op([](const Tensor& a, const Tensor& i) { return index_select(a, 1, i); })),
      gathering(
          "index_select_transposed", indexed({kShape[1], kShape[0]}, {53}, kShape[0]),
          binary_op([](const Tensor& a, const Tensor& i) { return index_select(a.t(), 0, i); })),
      // The swept dtype is the index's: int32 or int64.
      {.op = "index_select_by_index_dtype",
       .dtypes = kIndexDTypes,
       .inputs =
           [](DType dt) {
             return Tensors{values(kShape, 1, kFloat32), integers({53}, 2, dt, 0, kShape[0])};
           },
       .body = binary_op([](const Tensor& a, const Tensor& i) { return index_select(a, 0, i); }),
       .precision = Precision::Exact,
       .grads = {0}},
      gathering("gather", indexed(kShape, {37, 97}, kShape[1]),
                binary_op([](const Tensor& a, const Tensor& i) { return gather(a, 1, i); })),
      gathering("gather_dim0_int32", indexed(kShape, {29, 111}, kShape[0], kInt32),
                binary_op([](const Tensor& a, const Tensor& i) { return gather(a, 0, i); })),
      // Small integers, so that the sums of duplicates are exact in every dtype.
      {.op = "scatter_add",
       .dtypes = kNumeric,
       .inputs =
           [](DType dt) {
             const Shape index = {29, 111};
             return Tensors{integers(kShape, 1, dt, -3, 4),
                            integers(index, 2, kInt64, 0, kShape[0]),
                            integers(index, 3, dt, -3, 4)};
           },
       .body = ternary_op([](const Tensor& a, const Tensor& i, const Tensor& src) {
         return scatter_add(a, 0, i, src);
       }),
       .precision = Precision::Exact,
       .grads = {0, 2}},
      // The swept dtype is the indices'.
      {.op = "one_hot",
       .dtypes = kIndexDTypes,
       .inputs = [](DType dt) { return Tensors{integers({37, 29}, 1, dt, 0, 13)}; },
       .body = unary_op([](const Tensor& i) { return one_hot(i, 13); }),
       .precision = Precision::Exact},
  };
}

std::vector<Case> join_cases() {
  auto pieces = [](std::vector<Shape> shapes) -> Inputs {
    return [shapes](DType dt) {
      Tensors in;
      for (size_t i = 0; i < shapes.size(); ++i) in.push_back(values(shapes[i], 1 + i, dt));
      return in;
    };
  };
  auto joined = [](std::function<Tensor(const Tensors&)> f) -> Body {
    return [f](const Args& a) -> Tensors { return {f(a.in)}; };
  };
  return {
      {.op = "cat",
       .dtypes = kAllDTypes,
       .inputs = pieces({{37, 20}, {37, 1}, {37, 45}}),
       .body = joined([](const Tensors& t) { return cat(t, 1); }),
       .precision = Precision::Exact,
       .grads = {0, 1, 2}},
      {.op = "cat_dim0",
       .dtypes = kAllDTypes,
       .inputs = pieces({{5, 111}, {32, 111}}),
       .body = joined([](const Tensors& t) { return cat(t, 0); }),
       .precision = Precision::Exact,
       .grads = {0, 1}},
      {.op = "stack",
       .dtypes = kAllDTypes,
       .inputs = pieces({{37, 37}, {37, 37}, {37, 37}}),
       .body = joined([](const Tensors& t) { return stack(t, 1); }),
       .precision = Precision::Exact,
       .grads = {0, 1, 2}},
  };
}

std::vector<Case> all_cases() {
  std::vector<Case> all;
  for (auto family : {gather_cases, join_cases})
    for (Case& c : family()) all.push_back(std::move(c));
  return all;
}

class CudaSweepIndexing : public ::testing::TestWithParam<Param> {};

TEST_P(CudaSweepIndexing, CpuReference) { check_reference(GetParam()); }
TEST_P(CudaSweepIndexing, MatchesCpu) { check(GetParam()); }

INSTANTIATE_TEST_SUITE_P(, CudaSweepIndexing, ::testing::ValuesIn(params(all_cases())), name);

}  // namespace
