// Tensor core: dtypes, creation, views sharing storage, broadcasting rules, conversions,
// printing, random numbers, and the errors bad input gets.
#include <cmath>

#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;

TEST(DType, SizesNamesAndPromotion) {
  EXPECT_EQ(dtype_size(kBFloat16), 2u);
  EXPECT_EQ(dtype_size(kInt64), 8u);
  EXPECT_STREQ(dtype_name(kFloat16), "float16");
  EXPECT_EQ(promote_types(kInt32, kFloat32), kFloat32);
  EXPECT_EQ(promote_types(kUInt8, kInt32), kInt32);
  EXPECT_EQ(promote_types(kFloat16, kBFloat16), kFloat32);
  EXPECT_EQ(promote_types(kBool, kUInt8), kUInt8);
  EXPECT_EQ(promote_types(kInt64, kFloat16), kFloat16);
  EXPECT_EQ(dtype_from_string("bf16"), kBFloat16);
  EXPECT_TRUE(test::throws_with<ValueError>([] { dtype_from_string("float8"); },
                                            {"dtype", "float8", "expected one of"}));
}

TEST(DType, HalfConversionsRoundToNearestEven) {
  EXPECT_EQ(float(float16(1.0f)), 1.0f);
  EXPECT_EQ(float16(65504.0f).bits, 0x7bffu);           // largest finite half
  EXPECT_EQ(float16(65520.0f).bits, 0x7c00u);           // rounds to inf
  EXPECT_EQ(float(float16(5.960464477539063e-08f)), 5.960464477539063e-08f);  // smallest subnormal
  EXPECT_EQ(float16(1.0f + 1.0f / 2048).bits, 0x3c00u);  // tie rounds to even (down)
  EXPECT_EQ(float16(1.0f + 3.0f / 2048).bits, 0x3c02u);  // tie rounds to even (up)
  EXPECT_TRUE(std::isnan(float(float16(NAN))));
  EXPECT_EQ(bfloat16(1.0f + 1.0f / 256).bits, 0x3f80u);  // tie to even
  EXPECT_EQ(float(bfloat16(3.0f)), 3.0f);
  // Every half value survives float -> half -> float.
  for (uint32_t b = 0; b < 0x7c00u; b += 7) {
    float16 h;
    h.bits = uint16_t(b);
    EXPECT_EQ(float16(float(h)).bits, h.bits);
  }
}

TEST(Creation, ConstantsRangesIdentity) {
  Tensor z = zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.dtype(), kFloat32);
  EXPECT_EQ(z.to_vector<float>(), std::vector<float>(6, 0.f));
  EXPECT_EQ(full({2}, 3.5, kFloat64).to_vector<double>(), (std::vector<double>{3.5, 3.5}));
  EXPECT_EQ(arange(5).dtype(), kInt64);
  EXPECT_EQ(arange(5).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(0.0, 1.0, 0.25).to_vector<float>(), (std::vector<float>{0, .25f, .5f, .75f}));
  EXPECT_EQ(arange(5, 0, -2).to_vector<int64_t>(), (std::vector<int64_t>{5, 3, 1}));
  EXPECT_EQ(linspace(0, 1, 5).to_vector<float>(), (std::vector<float>{0, .25f, .5f, .75f, 1}));
  EXPECT_EQ(eye(2, 3).to_vector<float>(), (std::vector<float>{1, 0, 0, 0, 1, 0}));
  Tensor t = tensor(std::vector<int32_t>{1, 2, 3, 4}, {2, 2});
  EXPECT_EQ(t.dtype(), kInt32);
  EXPECT_EQ(t.to(kFloat64).to_vector<double>(), (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(scalar_tensor(2.5).dim(), 0);
  EXPECT_DOUBLE_EQ(scalar_tensor(2.5).item<double>(), 2.5);
}

TEST(Creation, FromBlobBorrowsMemory) {
  std::vector<float> buf{1, 2, 3, 4, 5, 6};
  bool released = false;
  {
    Tensor t = from_blob(buf.data(), {2, 3}, kFloat32, kCPU, [&](void*) { released = true; });
    buf[4] = 50;  // visible through the tensor: no copy was made
    EXPECT_FLOAT_EQ(t.select(0, 1).select(0, 1).item<float>(), 50.f);
    Tensor v = t.t();  // a view keeps the borrowed memory alive
    t = Tensor();
    EXPECT_FALSE(released);
  }
  EXPECT_TRUE(released);
}

TEST(Random, SeededPhiloxIsReproducibleAndWellDistributed) {
  Generator g1(42), g2(42), g3(43);
  Tensor a = rand({1000}, {}, &g1), b = rand({1000}, {}, &g2), c = rand({1000}, {}, &g3);
  EXPECT_TRUE(equal(a, b));
  EXPECT_FALSE(equal(a, c));
  // Successive draws continue the counter instead of repeating.
  EXPECT_FALSE(equal(rand({1000}, {}, &g1), a));
  // Uniform [0, 1): mean 1/2, variance 1/12; normal: mean 0, variance 1 (loose 5-sigma bounds).
  Generator g(7);
  auto u = rand({100000}, kFloat64, &g).to_vector<double>();
  double mu = 0, m2 = 0;
  for (double x : u) {
    ASSERT_GE(x, 0.0);
    ASSERT_LT(x, 1.0);
    mu += x;
    m2 += x * x;
  }
  mu /= double(u.size());
  EXPECT_NEAR(mu, 0.5, 5 * std::sqrt(1.0 / 12 / 1e5));
  EXPECT_NEAR(m2 / double(u.size()) - mu * mu, 1.0 / 12, 2e-3);
  auto n = randn({100000}, {}, &g).to_vector<float>();
  double nm = 0, nv = 0;
  for (float x : n) nm += x;
  nm /= double(n.size());
  for (float x : n) nv += (x - nm) * (x - nm);
  nv /= double(n.size());
  EXPECT_NEAR(nm, 0.0, 5 * std::sqrt(1.0 / 1e5));
  EXPECT_NEAR(nv, 1.0, 0.03);
  auto r = randint(3, 7, {10000}, kInt64, &g).to_vector<int64_t>();
  std::vector<int> hist(4, 0);
  for (int64_t x : r) {
    ASSERT_GE(x, 3);
    ASSERT_LT(x, 7);
    hist[size_t(x - 3)]++;
  }
  for (int h : hist) EXPECT_NEAR(h, 2500, 5 * std::sqrt(2500 * 0.75));
}

TEST(Random, PhiloxMatchesTheReferenceVector) {
  // Known-answer test from the Random123 distribution (philox4x32_10, counter and key of ones).
  auto x = philox4x32(0xffffffffffffffffull, 0xffffffffffffffffull, 0xffffffffffffffffull);
  EXPECT_EQ(x[0], 0x408f276du);
  EXPECT_EQ(x[1], 0x41c83b0eu);
  EXPECT_EQ(x[2], 0xa20bc7c6u);
  EXPECT_EQ(x[3], 0x6d5451fdu);
  auto z = philox4x32(0, 0, 0);
  EXPECT_EQ(z[0], 0x6627e8d5u);
  EXPECT_EQ(z[1], 0xe169c58du);
  EXPECT_EQ(z[2], 0xbc57ac4cu);
  EXPECT_EQ(z[3], 0x9b00dbd8u);
}

TEST(Views, ShareStorageAndSeeWrites) {
  Tensor base = arange(0, 12, 1, kFloat32).reshape({3, 4});
  Tensor v = base.view({4, 3});
  Tensor tr = base.t();
  Tensor row = base.select(0, 1);
  Tensor col = base.narrow(1, 2, 1);
  Tensor ex = base.select(1, 0).unsqueeze(1).expand({3, 5});
  EXPECT_EQ(tr.shape(), (Shape{4, 3}));
  EXPECT_FALSE(tr.is_contiguous());
  EXPECT_EQ(tr.strides(), (Strides{1, 4}));
  EXPECT_EQ(ex.strides(), (Strides{4, 0}));
  base.select(0, 1).select(0, 2).fill_(100);  // element (1, 2)
  EXPECT_FLOAT_EQ(v.select(0, 2).select(0, 0).item<float>(), 100.f);  // flat index 6
  EXPECT_FLOAT_EQ(tr.select(0, 2).select(0, 1).item<float>(), 100.f);
  EXPECT_FLOAT_EQ(row.select(0, 2).item<float>(), 100.f);
  EXPECT_FLOAT_EQ(col.select(0, 1).select(0, 0).item<float>(), 100.f);
  EXPECT_EQ(ex.select(0, 1).to_vector<float>(), std::vector<float>(5, 4.f));
  // Slices with steps, negative bounds, squeeze/unsqueeze/permute/flatten.
  EXPECT_EQ(arange(10).slice(0, 1, -1, 3).to_vector<int64_t>(), (std::vector<int64_t>{1, 4, 7}));
  Tensor p = zeros({2, 3, 4}).permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(zeros({2, 1, 3}).squeeze().shape(), (Shape{2, 3}));
  EXPECT_EQ(zeros({2, 1, 3}).squeeze(1).shape(), (Shape{2, 3}));
  EXPECT_EQ(zeros({2, 3}).unsqueeze(-1).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(zeros({2, 3, 4}).flatten(1).shape(), (Shape{2, 12}));
  EXPECT_EQ(zeros({2, 3, 4}).reshape({-1, 4}).shape(), (Shape{6, 4}));
  // reshape of a non-contiguous tensor copies; view refuses.
  Tensor r = tr.reshape({12});
  EXPECT_FALSE(r.storage() == base.storage());
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { tr.view({12}); }, {"view", "[4, 3]", "reshape"}));
  // contiguous() of a transposed view lays the values out row by row.
  EXPECT_EQ(arange(6).reshape({2, 3}).t().contiguous().to_vector<int64_t>(),
            (std::vector<int64_t>{0, 3, 1, 4, 2, 5}));
}

TEST(Views, ViewsAreDifferentiable) {
  Tensor x = test::uniform({3, 4}, 1).requires_grad_();
  auto f = [](const std::vector<Tensor>& in) {
    const Tensor& a = in[0];
    return mul(a.t().slice(0, 1, 4, 2).reshape({6}), a.narrow(0, 1, 2).narrow(1, 0, 3).flatten())
        .unsqueeze(0)
        .expand({2, 6});
  };
  EXPECT_TRUE(test::gradcheck(f, {x}));
  EXPECT_TRUE(test::matches_torch("(a.t()[1:4:2].reshape(6) * a[1:3, :3].flatten()).unsqueeze(0).expand(2, 6)",
                                  {test::uniform({3, 4}, 2, -1, 1, kFloat32)}, f));
  EXPECT_TRUE(test::matches_torch("a.permute(2, 0, 1).select(1, 1).squeeze()",
                                  {test::uniform({2, 3, 4}, 3, -1, 1, kFloat32)},
                                  [](const std::vector<Tensor>& in) {
                                    return in[0].permute({2, 0, 1}).select(1, 1).squeeze();
                                  }));
}

TEST(Broadcasting, ShapesFollowNumPyRules) {
  EXPECT_EQ(broadcast_shapes({3, 1}, {1, 4}, "add"), (Shape{3, 4}));
  EXPECT_EQ(broadcast_shapes({2, 3, 4}, {4}, "add"), (Shape{2, 3, 4}));
  EXPECT_EQ(broadcast_shapes({}, {2, 2}, "add"), (Shape{2, 2}));
  EXPECT_EQ(broadcast_shapes({0, 1}, {1, 5}, "add"), (Shape{0, 5}));
  EXPECT_TRUE(test::throws_with<ShapeError>([] { broadcast_shapes({2, 3}, {4}, "mul"); },
                                            {"mul", "[2, 3]", "[4]", "3 vs 4"}));
  EXPECT_EQ(sum_to(ones({2, 3, 4}), {3, 1}).to_vector<float>(), std::vector<float>(3, 8.f));
}

TEST(Conversion, DTypeAndItem) {
  Tensor f = tensor(std::vector<float>{1.7f, -2.5f, 0.f, 3.f});
  EXPECT_EQ(f.to(kInt32).to_vector<int32_t>(), (std::vector<int32_t>{1, -2, 0, 3}));  // truncation
  EXPECT_EQ(f.to(kBool).to_vector<bool>(), (std::vector<bool>{true, true, false, true}));
  EXPECT_EQ(f.to(kBFloat16).to(kFloat32).to_vector<float>(),
            (std::vector<float>{1.703125f, -2.5f, 0.f, 3.f}));
  EXPECT_EQ(f.to(kFloat32).impl(), f.impl());  // same dtype: the same tensor
  EXPECT_EQ(full({}, 3, kInt64).item<int64_t>(), 3);
  EXPECT_TRUE(test::throws_with<ValueError>([&] { f.item(); }, {"item", "one element", "[4]"}));
  // Conversions are differentiable for floating targets.
  Tensor x = test::uniform({4}, 9).requires_grad_();
  EXPECT_TRUE(test::gradcheck([](auto& in) { return mul(in[0].to(kFloat32).to(kFloat64), in[0]); }, {x}, 1e-3, 1e-3, 1e-3));
}

// torch's str() of the same tensor, through the oracle (as bytes, the oracle's unit).
std::string torch_str(const std::string& make) {
  Tensor bytes = test::TorchOracle::get().run_code(
      "out = torch.tensor(list(str(" + make + ").encode()), dtype=torch.uint8)")[0];
  std::string s;
  for (int64_t c : bytes.to(kInt64).to_vector<int64_t>()) s.push_back(char(c));
  return s;
}

TEST(Printing, MatchesPyTorchsText) {
  EXPECT_EQ(tensor(std::vector<float>{1, 2, 3, 4}, {2, 2}).str(),
            torch_str("torch.tensor([[1., 2.], [3., 4.]])"));
  EXPECT_EQ(tensor(std::vector<int64_t>{1, -20}).str(), torch_str("torch.tensor([1, -20])"));
  EXPECT_EQ(tensor(std::vector<bool>{true, false}).str(), torch_str("torch.tensor([True, False])"));
  EXPECT_EQ(tensor(std::vector<float>{0.5f, -1.25f, 100}).str(),
            torch_str("torch.tensor([0.5, -1.25, 100.])"));
  // Values spanning more than a factor of 1000, or tiny ones: scientific notation.
  EXPECT_EQ(tensor(std::vector<float>{0.5f, -1.25f, 1000}).str(),
            torch_str("torch.tensor([0.5, -1.25, 1000.])"));
  EXPECT_EQ(tensor(std::vector<float>{1, 2000}).str(), torch_str("torch.tensor([1., 2000.])"));
  EXPECT_EQ(tensor(std::vector<float>{0.5f, 5e-5f}).str(), torch_str("torch.tensor([0.5, 5e-5])"));
  EXPECT_EQ(tensor(std::vector<float>{0, NAN, INFINITY, -2}).str(),
            torch_str("torch.tensor([0., float('nan'), float('inf'), -2.])"));
  EXPECT_EQ(ones({2}).requires_grad_().str(), torch_str("torch.ones(2, requires_grad=True)"));
}

// Where anvil's text differs from torch's on purpose: dtypes without torch's "torch." prefix
// (torch: dtype=torch.float64) and nodes by their names (torch: grad_fn=<MulBackward0>).
TEST(Printing, NamesDTypesAndNodesAsAnvilDoes) {
  EXPECT_EQ(tensor(std::vector<double>{0.5}, {}).str(), "tensor(0.5000, dtype=float64)");
  Tensor x = ones({2}).requires_grad_();
  EXPECT_NE(mul(x, x).str().find("grad_fn=<MulBackward>"), std::string::npos);
}

TEST(Errors, BadInputNamesOpExpectedAndActual) {
  Tensor a = zeros({2, 3});
  EXPECT_TRUE(test::throws_with<IndexError>([&] { a.size(2); }, {"size", "[-2, 1]", "2"}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { a.transpose(0, 5); }, {"transpose", "5"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { a.reshape({4, 2}); }, {"reshape", "[4, 2]", "[2, 3]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { a.expand({3, 3}); }, {"expand", "3", "2"}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { a.narrow(1, 2, 2); }, {"narrow", "[2, 4)", "3"}));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { a.select(0, 2); }, {"select", "index 2", "size 2"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([&] { add(a, zeros({3, 2})); }, {"add", "[2, 3]", "[3, 2]"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { zeros({2}, kInt64).requires_grad_(); },
                                            {"requires_grad_", "floating-point", "int64"}));
  EXPECT_TRUE(test::throws_with<DTypeError>([&] { a.data<double>(); }, {"data", "float64", "float32"}));
  EXPECT_TRUE(test::throws_with<DeviceError>([] { Device("tpu"); }, {"Device", "cuda", "tpu"}));
  if (!cuda_is_available()) {
    EXPECT_TRUE(test::throws_with<DeviceError>([] { zeros({2}, kCUDA); }, {"cuda"}));
  } else {
    EXPECT_TRUE(test::throws_with<DeviceError>([&] { add(a, zeros({2, 3}, kCUDA)); },
                                               {"add", "cpu", "cuda:0"}));
  }
  EXPECT_TRUE(test::throws_with<ValueError>([] { zeros({2, -1}); }, {"empty", "negative", "[2, -1]"}));
}
