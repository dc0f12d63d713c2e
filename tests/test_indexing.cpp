// index_select, gather, scatter_add, embedding and one_hot: values, gradients, agreement with
// PyTorch and bad input.
#include "support/check.h"

using namespace anvil;

namespace {
Tensor f32(const Shape& shape, uint64_t seed) {
  return test::uniform(shape, seed, -1, 1, kFloat32);
}
Tensor i64(const std::vector<int64_t>& v, const Shape& shape = {}) { return tensor(v, shape); }
Tensor i32(const std::vector<int32_t>& v, const Shape& shape = {}) { return tensor(v, shape); }
Tensor randidx(int64_t high, const Shape& shape, uint64_t seed, DType dt = kInt64) {
  Generator g(seed);
  return randint(0, high, shape, dt, &g);
}
}  // namespace

// ---- index_select ----

TEST(IndexSelect, Values) {
  Tensor a = arange(0, 12, 1, kFloat32).reshape({3, 4});
  EXPECT_TRUE(test::all_close(index_select(a, 1, i64({3, 0, 3})),
                              tensor(std::vector<float>{3, 0, 3, 7, 4, 7, 11, 8, 11}, {3, 3})));
  EXPECT_TRUE(test::all_close(index_select(a, 0, i32({2})),
                              tensor(std::vector<float>{8, 9, 10, 11}, {1, 4})));
  EXPECT_TRUE(test::all_close(index_select(a, -2, scalar_tensor(1, kInt64)),
                              tensor(std::vector<float>{4, 5, 6, 7}, {1, 4})));
  Tensor ints = tensor(std::vector<int64_t>{5, 6, 7});
  EXPECT_TRUE(test::all_close(index_select(ints, 0, i64({2, 2, 0})), i64({7, 7, 5})));
  EXPECT_EQ(index_select(a, 1, i64({})).shape(), (Shape{3, 0}));
}

TEST(IndexSelect, Gradcheck) {
  Tensor a = test::uniform({3, 4}, 1).requires_grad_();
  Tensor idx = i64({3, 0, 3, 1});  // a repeated index accumulates
  EXPECT_TRUE(test::gradcheck([idx](auto& x) { return index_select(x[0], 1, idx); }, {a}));
  EXPECT_TRUE(test::gradcheck([](auto& x) { return index_select(x[0], 0, i32({2, 2})); }, {a}));
}

TEST(IndexSelect, MatchesTorch) {
  EXPECT_TRUE(test::matches_torch("torch.index_select(a, 1, b)",
                                  {f32({5, 4}, 1).t(), randidx(5, {7}, 2)},
                                  [](auto& x) { return index_select(x[0], 1, x[1]); }));
  EXPECT_TRUE(test::matches_torch("torch.index_select(a, 0, b)",
                                  {f32({6, 3, 2}, 3), randidx(6, {10}, 4, kInt32)},
                                  [](auto& x) { return index_select(x[0], 0, x[1]); }));
  EXPECT_TRUE(test::matches_torch("torch.index_select(a, -1, b)",
                                  {f32({4, 3, 8}, 5).slice(2, 0, 8, 2), randidx(4, {5}, 6)},
                                  [](auto& x) { return index_select(x[0], -1, x[1]); }));
  // Large enough for the parallel paths (forward copy and backward index_add); float64 so that
  // duplicate indices summing in another order cannot differ in the last bit.
  EXPECT_TRUE(test::matches_torch("torch.index_select(a, 0, b)",
                                  {test::uniform({50, 3000}, 7), randidx(50, {80}, 8)},
                                  [](auto& x) { return index_select(x[0], 0, x[1]); }));
}

TEST(IndexSelect, BadInput) {
  Tensor a = zeros({3, 4});
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        index_select(a, 1, i64({0, 4}));
      },
      {"index_select", "index 4", "0 <= index < 4"}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { index_select(a, 0, i32({-1})); },
                                            {"index_select", "index -1", "0 <= index < 3"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { index_select(a, 0, zeros({2})); },
                                            {"index_select", "int64 or int32", "float32"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        index_select(a, 0, i64({0, 1}, {1, 2}));
      },
      {"index_select", "0-D or 1-D", "[1, 2]"}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { index_select(a, 2, i64({0})); },
                                            {"index_select", "[-2, 1]", "got 2"}));
}

// ---- gather ----

TEST(Gather, Values) {
  Tensor t = tensor(std::vector<float>{1, 2, 3, 4}, {2, 2});
  // torch.gather's documented example.
  EXPECT_TRUE(test::all_close(gather(t, 1, i64({0, 0, 1, 0}, {2, 2})),
                              tensor(std::vector<float>{1, 1, 4, 3}, {2, 2})));
  EXPECT_TRUE(
      test::all_close(gather(t, 0, i32({1, 0}, {1, 2})), tensor(std::vector<float>{3, 2}, {1, 2})));
  // The index may be smaller than the input in every dim.
  Tensor a = arange(0, 12, 1, kInt64).reshape({3, 4});
  EXPECT_TRUE(test::all_close(gather(a, 1, i64({3, 3, 0, 1}, {2, 2})), i64({3, 3, 4, 5}, {2, 2})));
  EXPECT_TRUE(
      test::all_close(gather(scalar_tensor(5.0), 0, scalar_tensor(0, kInt64)), scalar_tensor(5.0)));
}

TEST(Gather, Gradcheck) {
  Tensor a = test::uniform({3, 4}, 1).requires_grad_();
  Tensor idx = i64({0, 0, 2, 1, 2, 2}, {2, 3});  // repeated entries accumulate
  EXPECT_TRUE(test::gradcheck([idx](auto& x) { return gather(x[0], 0, idx); }, {a}));
  EXPECT_TRUE(test::gradcheck([idx](auto& x) { return gather(x[0], 1, idx); }, {a}));
}

TEST(Gather, MatchesTorch) {
  Tensor a = f32({4, 5, 6}, 1).permute({2, 0, 1});  // [6, 4, 5], non-contiguous
  EXPECT_TRUE(test::matches_torch("torch.gather(a, 0, b)", {a, randidx(6, {3, 4, 2}, 2)},
                                  [](auto& x) { return gather(x[0], 0, x[1]); }));
  EXPECT_TRUE(test::matches_torch("torch.gather(a, 1, b)", {a, randidx(4, {6, 7, 5}, 3)},
                                  [](auto& x) { return gather(x[0], 1, x[1]); }));
  EXPECT_TRUE(test::matches_torch("torch.gather(a, -1, b)", {a, randidx(5, {2, 3, 9}, 4)},
                                  [](auto& x) { return gather(x[0], -1, x[1]); }));
  // Parallel path, both orientations; float64 for an order-independent backward sum.
  EXPECT_TRUE(test::matches_torch("torch.gather(a, 1, b)",
                                  {test::uniform({2000, 30}, 5), randidx(30, {2000, 40}, 6)},
                                  [](auto& x) { return gather(x[0], 1, x[1]); }));
  EXPECT_TRUE(test::matches_torch("torch.gather(a, 0, b)",
                                  {test::uniform({30, 2000}, 7), randidx(30, {40, 2000}, 8)},
                                  [](auto& x) { return gather(x[0], 0, x[1]); }));
}

TEST(Gather, BadInput) {
  Tensor a = zeros({3, 4});
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        gather(a, 1, i64({0, 4}, {1, 2}));
      },
      {"gather", "index 4", "0 <= index < 4"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        gather(a, 0, i64({-2}, {1, 1}));
      },
      {"gather", "index -2", "0 <= index < 3"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        gather(a, 0, i64({0, 1, 2}));
      },
      {"gather", "2 dims", "[3, 4]", "[3]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        gather(a, 0, zeros({1, 5}, kInt64));
      },
      {"gather", "size <= 4", "dimension 1", "[1, 5]"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] {
        gather(a, 0, zeros({1, 1}, kUInt8));
      },
      {"gather", "int64 or int32", "uint8"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        gather(a, -3, zeros({1, 1}, kInt64));
      },
      {"gather", "got -3"}));
}

// ---- scatter_add ----

TEST(ScatterAdd, Values) {
  Tensor idx = i64({0, 1, 2, 0, 0, 2, 0, 0, 1, 2}, {2, 5});
  Tensor r = scatter_add(zeros({3, 5}), 0, idx, ones({2, 5}));
  EXPECT_TRUE(test::all_close(
      r, tensor(std::vector<float>{1, 1, 1, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1}, {3, 5})));
  // Duplicates along dim accumulate; src may be larger than the index; a is not modified.
  Tensor a = tensor(std::vector<double>{1, 2, 3});
  Tensor s = scatter_add(a, 0, i32({2, 2, 0}), tensor(std::vector<double>{10, 20, 30, 99}));
  EXPECT_TRUE(test::all_close(s, tensor(std::vector<double>{31, 2, 33})));
  EXPECT_TRUE(test::all_close(a, tensor(std::vector<double>{1, 2, 3})));
  Tensor n =
      scatter_add(zeros({2, 2}, kInt64), 1, i64({1, 1, 0, 0}, {2, 2}), i64({1, 2, 3, 4}, {2, 2}));
  EXPECT_TRUE(test::all_close(n, i64({0, 3, 7, 0}, {2, 2})));
}

TEST(ScatterAdd, Gradcheck) {
  Tensor a = test::uniform({3, 4}, 1).requires_grad_();
  Tensor src = test::uniform({3, 5}, 2).requires_grad_();  // larger than the index
  Tensor idx = i64({0, 0, 2, 1, 2, 2}, {2, 3});
  EXPECT_TRUE(
      test::gradcheck([idx](auto& x) { return scatter_add(x[0], 0, idx, x[1]); }, {a, src}));
  EXPECT_TRUE(
      test::gradcheck([idx](auto& x) { return scatter_add(x[0], 1, idx, x[1]); }, {a, src}));
}

TEST(ScatterAdd, MatchesTorch) {
  // Small: src and index of one shape (torch's backward needs that for src).
  EXPECT_TRUE(test::matches_torch("torch.scatter_add(a, 1, b, c)",
                                  {f32({4, 3}, 1).t(), randidx(4, {3, 6}, 2), f32({6, 3}, 3).t()},
                                  [](auto& x) { return scatter_add(x[0], 1, x[1], x[2]); }));
  EXPECT_TRUE(test::matches_torch("torch.scatter_add(a, 0, b, c)",
                                  {f32({5, 2, 3}, 4), randidx(5, {8, 2, 2}, 5), f32({8, 2, 2}, 6)},
                                  [](auto& x) { return scatter_add(x[0], 0, x[1], x[2]); }));
  // Large with many collisions, exercising both parallel splits (over the outer rows and over
  // the inner columns). float64: torch may add colliding entries in another order.
  EXPECT_TRUE(test::matches_torch(
      "torch.scatter_add(a, 1, b, c)",
      {test::uniform({3000, 8}, 7), randidx(8, {3000, 20}, 8), test::uniform({3000, 20}, 9)},
      [](auto& x) { return scatter_add(x[0], 1, x[1], x[2]); }));
  EXPECT_TRUE(test::matches_torch(
      "torch.scatter_add(a, 0, b, c)",
      {test::uniform({8, 3000}, 10), randidx(8, {20, 3000}, 11), test::uniform({20, 3000}, 12)},
      [](auto& x) { return scatter_add(x[0], 0, x[1], x[2]); }));
}

TEST(ScatterAdd, BadInput) {
  Tensor a = zeros({3, 4});
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        scatter_add(a, 0, i64({3}, {1, 1}), ones({1, 1}));
      },
      {"scatter_add", "index 3", "0 <= index < 3"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        scatter_add(a, 1, i64({-1}, {1, 1}), ones({1, 1}));
      },
      {"scatter_add", "index -1", "0 <= index < 4"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] {
        scatter_add(a, 0, i64({0}, {1, 1}), ones({1, 1}, kFloat64));
      },
      {"scatter_add", "float32", "float64"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        scatter_add(a, 0, i64({0, 0}, {1, 2}), ones({1, 1}));
      },
      {"scatter_add", "size <= 1", "src", "[1, 2]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { scatter_add(a, 0, i64({0}, {1}), ones({1})); },
                                            {"scatter_add", "2 dims", "[1]"}));
}

// ---- embedding ----

TEST(Embedding, ValuesAndPaddingGradient) {
  Tensor w = arange(0, 8, 1, kFloat64).reshape({4, 2}).detach().requires_grad_();
  Tensor idx = i64({1, 3, 0, 1}, {2, 2});
  Tensor e = embedding(w, idx, 1);
  EXPECT_TRUE(test::all_close(e, tensor(std::vector<double>{2, 3, 6, 7, 0, 1, 2, 3}, {2, 2, 2})));
  sum(mul(e, 2.0)).backward();
  // Row 0 and row 3 are used once; row 1 (padding) gets nothing; row 2 is unused.
  EXPECT_TRUE(
      test::all_close(w.grad(), tensor(std::vector<double>{2, 2, 0, 0, 0, 0, 2, 2}, {4, 2})));
  Tensor w2 = arange(0, 8, 1, kFloat64).reshape({4, 2}).detach().requires_grad_();
  sum(embedding(w2, i32({1, 1, 2}))).backward();
  EXPECT_TRUE(
      test::all_close(w2.grad(), tensor(std::vector<double>{0, 0, 2, 2, 1, 1, 0, 0}, {4, 2})));
  EXPECT_EQ(embedding(w, scalar_tensor(2, kInt64)).shape(), (Shape{2}));
}

TEST(Embedding, Gradcheck) {
  Tensor w = test::uniform({5, 3}, 1).requires_grad_();
  Tensor idx = i64({4, 0, 4, 2, 1, 2}, {3, 2});
  EXPECT_TRUE(test::gradcheck([idx](auto& x) { return embedding(x[0], idx); }, {w}));
  // With padding_idx the padding row's gradient is zero by definition (not the derivative),
  // so finite differences cannot check it; ValuesAndPaddingGradient and MatchesTorch do.
}

TEST(Embedding, MatchesTorch) {
  EXPECT_TRUE(test::matches_torch("F.embedding(b, a)", {f32({10, 4}, 1), randidx(10, {3, 5}, 2)},
                                  [](auto& x) { return embedding(x[0], x[1]); }));
  EXPECT_TRUE(test::matches_torch("F.embedding(b, a, padding_idx=2)",
                                  {f32({3, 6}, 3).t(), randidx(6, {20}, 4)},
                                  [](auto& x) { return embedding(x[0], x[1], 2); }));
  // Many rows hitting few embeddings: backward accumulation in float64 (order-independent).
  EXPECT_TRUE(test::matches_torch("F.embedding(b, a, padding_idx=0)",
                                  {test::uniform({7, 64}, 5), randidx(7, {40, 30}, 6)},
                                  [](auto& x) { return embedding(x[0], x[1], 0); }));
}

TEST(Embedding, BadInput) {
  Tensor w = zeros({4, 2});
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        embedding(w, i64({1, 4}));
      },
      {"embedding", "index 4", "0 <= index < 4"}));
  EXPECT_TRUE(
      test::throws_with<IndexError>([&] { embedding(w, i64({-1})); }, {"embedding", "index -1"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { embedding(zeros({4}), i64({1})); },
                                            {"embedding", "2 dims", "[4]"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { embedding(w, zeros({2})); },
                                            {"embedding", "int64 or int32", "float32"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { embedding(w, i64({1}), 4); },
                                            {"embedding", "padding_idx < 4", "got 4"}));
}

// ---- one_hot ----

TEST(OneHot, Values) {
  Tensor r = one_hot(i64({0, 2, 1}));
  EXPECT_EQ(r.dtype(), kInt64);
  EXPECT_TRUE(test::all_close(r, i64({1, 0, 0, 0, 0, 1, 0, 1, 0}, {3, 3})));
  Tensor r5 = one_hot(i32({3, 0}, {2, 1}), 5);
  EXPECT_EQ(r5.dtype(), kInt64);
  EXPECT_TRUE(test::all_close(r5, i64({0, 0, 0, 1, 0, 1, 0, 0, 0, 0}, {2, 1, 5})));
  EXPECT_EQ(one_hot(i64({}), 4).shape(), (Shape{0, 4}));
}

TEST(OneHot, MatchesTorch) {
  test::TorchTolerance exact{0, 0, false};
  EXPECT_TRUE(test::matches_torch(
      "F.one_hot(a)", {randidx(6, {4, 5}, 1)}, [](auto& x) { return one_hot(x[0]); }, exact));
  EXPECT_TRUE(test::matches_torch(
      "F.one_hot(a, 9)", {randidx(6, {7, 3}, 2).t()}, [](auto& x) { return one_hot(x[0], 9); },
      exact));
}

TEST(OneHot, BadInput) {
  EXPECT_TRUE(test::throws_with<IndexError>(
      [] {
        one_hot(i64({0, 3}), 3);
      },
      {"one_hot", "index 3", "3 classes", "0 <= index < 3"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [] {
        one_hot(i64({-1, 1}));
      },
      {"one_hot", "index -1"}));
  EXPECT_TRUE(
      test::throws_with<ValueError>([] { one_hot(i64({})); }, {"one_hot", "empty", "num_classes"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { one_hot(i64({1}), -2); },
                                            {"one_hot", "num_classes >= 0", "got -2"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([] { one_hot(zeros({2})); },
                                            {"one_hot", "int64 or int32", "float32"}));
}
