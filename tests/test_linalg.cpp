// Matrix products: matmul (all of torch.matmul's rank rules), mm, bmm, linear.
#include "support/check.h"

using namespace anvil;

namespace {
Tensor t64(std::vector<double> v, const Shape& s) { return tensor(v, s); }
}  // namespace

TEST(Linalg, MmValues) {
  Tensor a = t64({1, 2, 3, 4}, {2, 2}), b = t64({5, 6, 7, 8}, {2, 2});
  EXPECT_TRUE(test::all_close(mm(a, b), t64({19, 22, 43, 50}, {2, 2})));
  EXPECT_TRUE(test::all_close(matmul(a, b), t64({19, 22, 43, 50}, {2, 2})));
  // Transposed views go to BLAS without a copy; the result must still be right.
  EXPECT_TRUE(test::all_close(mm(a.t(), b), t64({26, 30, 38, 44}, {2, 2})));
  EXPECT_TRUE(test::all_close(mm(a, b.t()), t64({17, 23, 39, 53}, {2, 2})));
  EXPECT_TRUE(test::all_close(mm(a.t(), b.t()), t64({23, 31, 34, 46}, {2, 2})));
}

TEST(Linalg, MatmulRankRules) {
  Tensor v = t64({1, 2, 3}, {3}), w = t64({4, 5, 6}, {3});
  Tensor dot = matmul(v, w);
  EXPECT_EQ(dot.dim(), 0);
  EXPECT_DOUBLE_EQ(dot.item<double>(), 32.0);
  Tensor m = t64({1, 0, 0, 0, 1, 1}, {2, 3});  // rows e0 and e1 + e2
  EXPECT_TRUE(test::all_close(matmul(m, v), t64({1, 5}, {2})));
  EXPECT_TRUE(test::all_close(matmul(t64({1, 1}, {2}), m), t64({1, 1, 1}, {3})));
  // Batched with broadcast batch dims: [2, 1, 2, 3] x [3, 3, 1] -> [2, 3, 2, 1].
  Tensor a = test::uniform({2, 1, 2, 3}, 1), b = test::uniform({3, 3, 1}, 2);
  Tensor c = matmul(a, b);
  EXPECT_EQ(c.shape(), (Shape{2, 3, 2, 1}));
  auto av = a.to_vector<double>(), bv = b.to_vector<double>(), cv = c.to_vector<double>();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int r = 0; r < 2; ++r) {
        double s = 0;
        for (int k = 0; k < 3; ++k) s += av[size_t(i * 6 + r * 3 + k)] * bv[size_t(j * 3 + k)];
        EXPECT_NEAR(cv[size_t(i * 6 + j * 2 + r)], s, 1e-12);
      }
  // 1-D operands against batches are promoted and squeezed back.
  EXPECT_EQ(matmul(test::uniform({3}, 3), test::uniform({4, 3, 5}, 4)).shape(), (Shape{4, 5}));
  EXPECT_EQ(matmul(test::uniform({4, 2, 3}, 3), test::uniform({3}, 4)).shape(), (Shape{4, 2}));
}

TEST(Linalg, IntegerAndHalfAndEmpty) {
  Tensor a = tensor(std::vector<int64_t>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = tensor(std::vector<int64_t>{1, 0, 0, 1, 1, 1}, {3, 2});
  Tensor c = matmul(a, b);
  EXPECT_EQ(c.dtype(), kInt64);
  EXPECT_EQ(c.to_vector<int64_t>(), (std::vector<int64_t>{4, 5, 10, 11}));
  Tensor ci = matmul(a.to(kInt32).t(), t64({1, 1}, {2}).to(kInt32));
  EXPECT_EQ(ci.to_vector<int32_t>(), (std::vector<int32_t>{5, 7, 9}));
  Tensor h = mm(t64({1, 2, 3, 4}, {2, 2}).to(kBFloat16), t64({5, 6, 7, 8}, {2, 2}).to(kBFloat16));
  EXPECT_EQ(h.dtype(), kBFloat16);
  EXPECT_TRUE(test::all_close(h.to(kFloat64), t64({19, 22, 43, 50}, {2, 2})));
  Tensor f = mm(t64({1, 2, 3, 4}, {2, 2}).to(kFloat16), t64({5, 6, 7, 8}, {2, 2}).to(kFloat16));
  EXPECT_TRUE(test::all_close(f.to(kFloat64), t64({19, 22, 43, 50}, {2, 2})));
  // An empty inner dim gives zeros; an empty outer dim gives an empty result.
  Tensor z = mm(zeros({2, 0}, kFloat64), zeros({0, 3}, kFloat64));
  EXPECT_TRUE(test::all_close(z, zeros({2, 3}, kFloat64)));
  EXPECT_EQ(mm(zeros({0, 4}), zeros({4, 3})).shape(), (Shape{0, 3}));
  EXPECT_TRUE(test::all_close(matmul(zeros({2, 3, 0}), zeros({0, 4})), zeros({2, 3, 4})));
  EXPECT_TRUE(test::all_close(matmul(zeros({2, 3, 0}), zeros({2, 0, 4})), zeros({2, 3, 4})));
}

TEST(Linalg, LinearValues) {
  Tensor x = t64({1, 2}, {1, 2}), w = t64({1, 0, 1, 1, 0, -1}, {3, 2}), b = t64({10, 20, 30}, {3});
  EXPECT_TRUE(test::all_close(linear(x, w, b), t64({11, 23, 28}, {1, 3})));
  EXPECT_TRUE(test::all_close(linear(t64({1, 2}, {2}), w), t64({1, 3, -2}, {3})));
}

TEST(Linalg, Gradcheck) {
  auto req = [](Tensor t) { return t.requires_grad_(); };
  EXPECT_TRUE(test::gradcheck([](auto& x) { return mm(x[0], x[1]); },
                              {req(test::uniform({3, 4}, 1)), req(test::uniform({4, 2}, 2))}));
  EXPECT_TRUE(
      test::gradcheck([](auto& x) { return bmm(x[0], x[1]); },
                      {req(test::uniform({2, 3, 4}, 3)), req(test::uniform({2, 4, 2}, 4))}));
  EXPECT_TRUE(
      test::gradcheck([](auto& x) { return matmul(x[0], x[1]); },
                      {req(test::uniform({2, 1, 3, 4}, 5)), req(test::uniform({3, 4, 2}, 6))}));
  EXPECT_TRUE(test::gradcheck([](auto& x) { return matmul(x[0], x[1]); },
                              {req(test::uniform({4}, 7)), req(test::uniform({4}, 8))}));
  EXPECT_TRUE(test::gradcheck([](auto& x) { return matmul(x[0], x[1]); },
                              {req(test::uniform({4}, 9)), req(test::uniform({2, 4, 3}, 10))}));
  EXPECT_TRUE(test::gradcheck([](auto& x) { return matmul(x[0], x[1]); },
                              {req(test::uniform({2, 3, 4}, 11)), req(test::uniform({4, 5}, 12))}));
  EXPECT_TRUE(test::gradcheck([](auto& x) { return linear(x[0], x[1], x[2]); },
                              {req(test::uniform({2, 3, 4}, 13)), req(test::uniform({5, 4}, 14)),
                               req(test::uniform({5}, 15))}));
}

TEST(Linalg, MatchesTorch) {
  auto mmf = [](auto& x) { return matmul(x[0], x[1]); };
  using S = std::pair<Shape, Shape>;
  for (auto [sa, sb] : {S{{5, 7}, {7, 3}}, S{{7}, {7}}, S{{7}, {7, 3}}, S{{5, 7}, {7}},
                        S{{4, 5, 7}, {7, 3}}, S{{5, 7}, {4, 7, 3}}, S{{2, 1, 5, 7}, {3, 7, 3}},
                        S{{7}, {2, 7, 3}}, S{{2, 3, 5, 7}, {7}}, S{{1, 5, 7}, {4, 7, 6}}}) {
    EXPECT_TRUE(test::matches_torch(
        "torch.matmul(a, b)",
        {test::uniform(sa, 1, -1, 1, kFloat32), test::uniform(sb, 2, -1, 1, kFloat32)}, mmf))
        << to_string(sa) << " x " << to_string(sb);
  }
  // Non-contiguous operands: transposes, a slice, a permuted batch.
  Tensor at = test::uniform({6, 5}, 3, -1, 1, kFloat32).t();
  Tensor bs = test::uniform({6, 8}, 4, -1, 1, kFloat32).slice(1, 1, 8, 2);  // [6, 4]
  EXPECT_TRUE(test::matches_torch("a @ b", {at, bs}, mmf));
  EXPECT_TRUE(
      test::matches_torch("a @ b.t()", {at, bs.t()}, [](auto& x) { return mm(x[0], x[1].t()); }));
  Tensor ap = test::uniform({5, 3, 4}, 5, -1, 1, kFloat32).permute({1, 0, 2});  // [3, 5, 4]
  Tensor bp = test::uniform({3, 6, 4}, 6, -1, 1, kFloat32).transpose(1, 2);     // [3, 4, 6]
  EXPECT_TRUE(
      test::matches_torch("torch.bmm(a, b)", {ap, bp}, [](auto& x) { return bmm(x[0], x[1]); }));
  EXPECT_TRUE(test::matches_torch(
      "F.linear(a, b, c)",
      {test::uniform({2, 3, 6}, 7, -1, 1, kFloat32), test::uniform({4, 6}, 8, -1, 1, kFloat32),
       test::uniform({4}, 9, -1, 1, kFloat32)},
      [](auto& x) { return linear(x[0], x[1], x[2]); }));
  EXPECT_TRUE(test::matches_torch(
      "F.linear(a, b)",
      {test::uniform({6, 3}, 10, -1, 1, kFloat32).t(), test::uniform({4, 6}, 11, -1, 1, kFloat32)},
      [](auto& x) { return linear(x[0], x[1]); }));
  EXPECT_TRUE(test::matches_torch("a @ b",
                                  {test::uniform({64, 48}, 14, -1, 1, kFloat32),
                                   test::uniform({3, 48, 32}, 15, -1, 1, kFloat32)},
                                  mmf));
  // Integers (a plain loop, on threads at this size) must be exact.
  EXPECT_TRUE(
      test::matches_torch("a @ b",
                          {test::uniform({100, 50}, 16, -9, 9).to(kInt64),
                           test::uniform({50, 80}, 17, -9, 9).to(kInt64).t().contiguous().t()},
                          mmf, {0, 0}));
  // bfloat16: both sides round the float32 result (and torch may round partial sums), so
  // allow a couple of bf16 ulps.
  EXPECT_TRUE(test::matches_torch(
      "a @ b",
      {test::uniform({4, 8}, 12, -1, 1, kBFloat16), test::uniform({8, 3}, 13, -1, 1, kBFloat16)},
      mmf, {2e-2, 2e-2}));
}

TEST(Linalg, Errors) {
  Tensor a = zeros({2, 3}), b = zeros({4, 5});
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { matmul(a, b); },
                                            {"matmul", "[2, 3]", "[4, 5]", "3 != 4"}));
  EXPECT_TRUE(
      test::throws_with<ShapeError>([&] { mm(a, b); }, {"mm", "[2, 3]", "[4, 5]", "3 != 4"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { matmul(zeros({3}), zeros({4})); },
                                            {"matmul", "[3]", "[4]", "3 != 4"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { matmul(scalar_tensor(1.0), zeros({3})); },
                                            {"matmul", "at least 1 dim", "[]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        matmul(zeros({2, 2, 3}), zeros({3, 3, 1}));
      },
      {"matmul", "[2]", "[3]"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] {
        matmul(a, zeros({3, 2}, kFloat64));
      },
      {"matmul", "float32", "float64"}));
  EXPECT_TRUE(test::throws_with<DTypeError>(
      [&] {
        matmul(zeros({2, 2}, kBool), zeros({2, 2}, kBool));
      },
      {"matmul", "bool"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        mm(zeros({2, 2, 3}), zeros({3, 2}));
      },
      {"mm", "2 dims", "[2, 2, 3]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        bmm(zeros({2, 2, 3}), zeros({3, 3, 2}));
      },
      {"bmm", "batch", "[2, 2, 3]", "[3, 3, 2]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        bmm(zeros({2, 2, 3}), zeros({2, 4, 2}));
      },
      {"bmm", "3 != 4"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        linear(zeros({2, 5}), zeros({3, 4}));
      },
      {"linear", "last dim 4", "[3, 4]", "[2, 5]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [&] {
        linear(zeros({2, 4}), zeros({3, 4}), zeros({4}));
      },
      {"linear", "bias of shape [3]", "[4]"}));
}
