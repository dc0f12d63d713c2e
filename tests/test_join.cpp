// cat, stack, split and chunk: values, gradients, agreement with PyTorch and bad input.
#include "support/check.h"

using namespace anvil;

namespace {
Tensor f32(const Shape& shape, uint64_t seed) {
  return test::uniform(shape, seed, -1, 1, kFloat32);
}
std::vector<int64_t> sizes_along(const std::vector<Tensor>& parts, int64_t dim) {
  std::vector<int64_t> s;
  for (const Tensor& p : parts) s.push_back(p.size(dim));
  return s;
}
}  // namespace

TEST(Cat, Values) {
  Tensor a = tensor(std::vector<float>{1, 2, 3, 4}, {2, 2});
  Tensor b = tensor(std::vector<float>{5, 6}, {2, 1});
  EXPECT_TRUE(
      test::all_close(cat({a, b}, 1), tensor(std::vector<float>{1, 2, 5, 3, 4, 6}, {2, 3})));
  EXPECT_TRUE(
      test::all_close(cat({a, b.t()}, 0), tensor(std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2})));
  EXPECT_TRUE(test::all_close(cat({a, b}, -1), cat({a, b}, 1)));
}

TEST(Cat, PromotesDtypes) {
  Tensor a = tensor(std::vector<int32_t>{1, 2});
  Tensor b = tensor(std::vector<double>{0.5}, {1});
  Tensor c = cat({a, b});
  EXPECT_EQ(c.dtype(), kFloat64);
  EXPECT_TRUE(test::all_close(c, tensor(std::vector<double>{1, 2, 0.5})));
  EXPECT_EQ(cat({a, tensor(std::vector<int64_t>{3}, {1})}).dtype(), kInt64);
}

TEST(Cat, SkipsEmptyOneDimTensors) {
  Tensor x = f32({2, 3}, 1);
  Tensor e = empty({0});
  Tensor c = cat({e, x, e, x}, 1);  // dim 1 would be out of range for e: e takes no part
  EXPECT_EQ(c.shape(), (Shape{2, 6}));
  EXPECT_TRUE(test::all_close(c.narrow(1, 3, 3), x));
  EXPECT_EQ(cat({e, e}).shape(), (Shape{0}));
  // Empty tensors of other ranks take part (and must match).
  EXPECT_EQ(cat({zeros({0, 3}), x}, 0).shape(), (Shape{2, 3}));
}

TEST(Cat, Gradcheck) {
  Tensor a = test::uniform({2, 3}, 1).requires_grad_();
  Tensor b = test::uniform({2, 1}, 2).requires_grad_();
  Tensor c = test::uniform({2, 2}, 3).requires_grad_();
  EXPECT_TRUE(test::gradcheck([](auto& x) { return cat({x[0], x[1], x[2]}, 1); }, {a, b, c}));
  EXPECT_TRUE(test::gradcheck(
      [](auto& x) {
        return cat({x[0].t(), x[1].t(), x[0].t()}, 0);
      },
      {a, b}));
}

TEST(Cat, MatchesTorch) {
  EXPECT_TRUE(test::matches_torch(
      "torch.cat([a, b, c], 1)",
      {f32({3, 2}, 1), f32({4, 3}, 2).t(), f32({3, 7}, 3).slice(1, 1, 7, 2)}, [](auto& x) {
        return cat({x[0], x[1], x[2]}, 1);
      }));
  EXPECT_TRUE(test::matches_torch("torch.cat([a, b], 0)", {f32({2, 3, 4}, 4), f32({5, 3, 4}, 5)},
                                  [](auto& x) {
                                    return cat({x[0], x[1]}, 0);
                                  }));
  EXPECT_TRUE(test::matches_torch("torch.cat([a, b, a], -1)",
                                  {f32({4, 2, 3}, 6).permute({1, 2, 0}), f32({2, 3, 1}, 7)},
                                  [](auto& x) {
                                    return cat({x[0], x[1], x[0]}, -1);
                                  }));
  // Mixed dtypes promote, and the gradient comes back in each input's dtype.
  EXPECT_TRUE(test::matches_torch("torch.cat([a, b], 0)",
                                  {f32({2, 3}, 8), test::uniform({1, 3}, 9)}, [](auto& x) {
                                    return cat({x[0], x[1]}, 0);
                                  }));
}

TEST(Cat, BadInput) {
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [] {
        cat({zeros({2, 3}), zeros({3, 4})}, 1);
      },
      {"cat", "tensor 1", "[2, 3]", "dimension 1", "[3, 4]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [] {
        cat({zeros({2, 3}), zeros({2, 3, 1})}, 0);
      },
      {"cat", "[2, 3]", "[2, 3, 1]"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [] {
        cat({zeros({2, 3}), zeros({2, 3})}, 2);
      },
      {"cat", "[-2, 1]", "got 2"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { cat({}); }, {"cat", "non-empty", "none"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [] {
        cat({scalar_tensor(1.0), zeros({1})});
      },
      {"cat", "at least 1 dim", "zero-dimensional"}));
}

TEST(Stack, ValuesAndGradients) {
  Tensor a = tensor(std::vector<float>{1, 2});
  Tensor b = tensor(std::vector<float>{3, 4});
  EXPECT_TRUE(test::all_close(stack({a, b}), tensor(std::vector<float>{1, 2, 3, 4}, {2, 2})));
  EXPECT_TRUE(test::all_close(stack({a, b}, 1), tensor(std::vector<float>{1, 3, 2, 4}, {2, 2})));
  EXPECT_EQ(stack({a, b, a}, -1).shape(), (Shape{2, 3}));
  Tensor x = test::uniform({2, 3}, 1).requires_grad_(),
         y = test::uniform({2, 3}, 2).requires_grad_();
  EXPECT_TRUE(test::gradcheck([](auto& v) { return stack({v[0], v[1], v[0]}, 1); }, {x, y}));
}

TEST(Stack, MatchesTorch) {
  for (int64_t d : {0, 1, 2, -1})
    EXPECT_TRUE(test::matches_torch("torch.stack([a, b], " + std::to_string(d) + ")",
                                    {f32({3, 4}, 1), f32({4, 3}, 2).t()}, [d](auto& x) {
                                      return stack({x[0], x[1]}, d);
                                    }));
}

TEST(Stack, BadInput) {
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [] {
        stack({zeros({2, 3}), zeros({3, 2})});
      },
      {"stack", "[2, 3]", "[3, 2]"}));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [] {
        stack({zeros({2, 3}), zeros({2, 3})}, 3);
      },
      {"stack", "[-3, 2]", "got 3"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { stack({}); }, {"stack", "non-empty"}));
}

TEST(Split, BySize) {
  Tensor x = arange(0, 10, 1, kFloat32).reshape({5, 2});
  auto parts = split(x, 2);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(sizes_along(parts, 0), (std::vector<int64_t>{2, 2, 1}));
  EXPECT_TRUE(test::all_close(parts[2], tensor(std::vector<float>{8, 9}, {1, 2})));
  EXPECT_TRUE(parts[1].storage() == x.storage());  // views, not copies
  auto cols = split(x, 1, 1);
  ASSERT_EQ(cols.size(), 2u);
  EXPECT_TRUE(test::all_close(cols[1], tensor(std::vector<float>{1, 3, 5, 7, 9}, {5, 1})));
  EXPECT_EQ(split(x, 7).size(), 1u);
  EXPECT_EQ(split(zeros({0, 2}), 0).size(), 1u);  // as torch: one empty part
}

TEST(Split, BySizes) {
  Tensor x = arange(0, 6, 1, kFloat32);
  auto parts = split(x, std::vector<int64_t>{1, 0, 3, 2});
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(sizes_along(parts, 0), (std::vector<int64_t>{1, 0, 3, 2}));
  EXPECT_TRUE(test::all_close(parts[2], tensor(std::vector<float>{1, 2, 3})));
  EXPECT_TRUE(test::all_close(parts[3], tensor(std::vector<float>{4, 5})));
}

TEST(Chunk, TorchRule) {
  Tensor x = arange(0, 6, 1, kFloat32);
  EXPECT_EQ(sizes_along(chunk(x, 4), 0), (std::vector<int64_t>{2, 2, 2}));  // fewer than 4
  EXPECT_EQ(sizes_along(chunk(x, 3), 0), (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(sizes_along(chunk(x, 5), 0), (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(sizes_along(chunk(arange(0, 5, 1, kFloat32), 3), 0), (std::vector<int64_t>{2, 2, 1}));
  EXPECT_EQ(sizes_along(chunk(x, 10), 0), (std::vector<int64_t>{1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(sizes_along(chunk(zeros({0}), 3), 0), (std::vector<int64_t>{0, 0, 0}));
  EXPECT_TRUE(test::all_close(chunk(x, 3)[1], tensor(std::vector<float>{2, 3})));
}

TEST(SplitChunk, MatchTorch) {
  Tensor a = f32({7, 5}, 1).t();  // [5, 7], non-contiguous
  for (int64_t i = 0; i < 3; ++i) {
    std::string k = std::to_string(i);
    EXPECT_TRUE(test::matches_torch("torch.split(a, 3, 1)[" + k + "]", {a},
                                    [i](auto& x) { return split(x[0], 3, 1)[size_t(i)]; }));
    EXPECT_TRUE(test::matches_torch("torch.split(a, [2, 4, 1], -1)[" + k + "]", {a}, [i](auto& x) {
      return split(x[0], std::vector<int64_t>{2, 4, 1}, -1)[size_t(i)];
    }));
    EXPECT_TRUE(test::matches_torch("torch.chunk(a, 3, 0)[" + k + "]", {a},
                                    [i](auto& x) { return chunk(x[0], 3, 0)[size_t(i)]; }));
  }
  EXPECT_TRUE(test::matches_torch("len(torch.chunk(a, 4, 1))", {a}, [](auto& x) {
    return scalar_tensor(int64_t(chunk(x[0], 4, 1).size()), kInt64);
  }));
}

TEST(SplitChunk, Gradients) {
  Tensor x = test::uniform({5, 3}, 1).requires_grad_();
  EXPECT_TRUE(test::gradcheck(
      [](auto& v) {
        auto p = split(v[0], 2);
        return cat({mul(p[0], 2.0), p[2], mul(p[1], 3.0)}, 0);
      },
      {x}));
  EXPECT_TRUE(test::gradcheck(
      [](auto& v) {
        auto p = chunk(v[0], 2, 1);  // sizes 2 and 1
        return mul(p[0], p[1]);      // uses each part once, broadcasting the second
      },
      {x}));
}

TEST(SplitChunk, BadInput) {
  Tensor x = zeros({5, 2});
  EXPECT_TRUE(test::throws_with<ValueError>([&] { split(x, 0); },
                                            {"split", "positive split_size", "got 0", "size 5"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        split(x, std::vector<int64_t>{2, 2});
      },
      {"split", "sum to 5", "[2, 2]", "sum 4"}));
  EXPECT_TRUE(test::throws_with<ValueError>(
      [&] {
        split(x, std::vector<int64_t>{6, -1});
      },
      {"split", "non-negative", "[6, -1]"}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { split(x, 2, 2); }, {"split", "got 2"}));
  EXPECT_TRUE(test::throws_with<ValueError>([&] { chunk(x, 0); }, {"chunk", "positive", "got 0"}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { chunk(x, 2, -3); }, {"chunk", "got -3"}));
}
