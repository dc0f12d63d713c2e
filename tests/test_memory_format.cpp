// MemoryFormat::ChannelsLast: the layout itself (strides, is_contiguous, contiguous, empty),
// and that element-wise ops, dtype casts, conv2d and batch_norm keep a channels-last input
// channels-last while computing exactly what they compute on the row-major tensor.
#include "support/check.h"

using namespace anvil;
using test::all_close;
using test::uniform;

namespace {

constexpr MemoryFormat kCL = MemoryFormat::ChannelsLast;

bool is_channels_last_only(const Tensor& t) {
  return t.is_contiguous(kCL) && !t.is_contiguous();
}

// Element-by-element equality, layouts aside.
::testing::AssertionResult same_values(const Tensor& a, const Tensor& b) {
  return all_close(a.contiguous().to(kFloat64), b.contiguous().to(kFloat64), 0, 0);
}

TEST(MemoryFormat, ChannelsLastStridesAndContiguity) {
  EXPECT_EQ(channels_last_strides({2, 3, 4, 5}), (Strides{60, 1, 15, 3}));
  Tensor nhwc = uniform({2, 4, 5, 3}, 1);
  Tensor x = nhwc.permute({0, 3, 1, 2});  // a channels-last view of an NHWC buffer
  EXPECT_EQ(x.shape(), (Shape{2, 3, 4, 5}));
  EXPECT_TRUE(x.is_contiguous(kCL));
  EXPECT_FALSE(x.is_contiguous());
  EXPECT_TRUE(x.is_contiguous(MemoryFormat::Contiguous) == x.is_contiguous());
  EXPECT_EQ(x.contiguous(kCL).data_ptr(), x.data_ptr());  // already channels-last: itself

  Tensor y = uniform({2, 3, 4, 5}, 2);
  EXPECT_FALSE(y.is_contiguous(kCL));
  Tensor z = y.contiguous(kCL);
  EXPECT_EQ(z.strides(), (Strides{60, 1, 15, 3}));
  EXPECT_TRUE(same_values(z, y));
  // Size-1 dims may have any stride: a single channel is both layouts at once.
  Tensor one = uniform({2, 1, 4, 5}, 3);
  EXPECT_TRUE(one.is_contiguous(kCL));
  EXPECT_TRUE(one.is_contiguous());

  Tensor e = Tensor::empty({2, 3, 4, 5}, {}, kCL);
  EXPECT_EQ(e.strides(), (Strides{60, 1, 15, 3}));
  EXPECT_THROW(Tensor::empty({3, 4, 5}, {}, kCL), ShapeError);
  EXPECT_THROW(uniform({3, 4, 5}, 4).contiguous(kCL), ShapeError);
  EXPECT_FALSE(uniform({3, 4, 5}, 4).is_contiguous(kCL));
}

TEST(MemoryFormat, ContiguousChannelsLastIsDifferentiable) {
  Tensor x = uniform({2, 3, 4, 5}, 5).requires_grad_();
  Tensor g = uniform({2, 3, 4, 5}, 6);
  sum(mul(x.contiguous(kCL), g)).backward();
  EXPECT_TRUE(same_values(x.grad(), g));
}

TEST(MemoryFormat, ElementWiseOpsAndCastsKeepChannelsLast) {
  Tensor a = uniform({2, 3, 4, 5}, 7), b = uniform({2, 3, 4, 5}, 8);
  Tensor ca = a.contiguous(kCL), cb = b.contiguous(kCL);
  struct Case {
    const char* name;
    Tensor got, want;
  };
  const Case cases[] = {
      {"relu", relu(ca), relu(a)},
      {"exp", exp(ca), exp(a)},
      {"add", add(ca, cb), add(a, b)},
      {"mul scalar", mul(ca, 3.0), mul(a, 3.0)},
      {"sub with a broadcast element", sub(ca, full({}, 0.5, kFloat64)), sub(a, 0.5)},
      {"to float32", ca.to(kFloat32), a.to(kFloat32)},
      {"to bfloat16", ca.to(kBFloat16), a.to(kBFloat16)},
      {"gt", gt(ca, cb), gt(a, b)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(is_channels_last_only(c.got));
    EXPECT_TRUE(same_values(c.got, c.want));
  }
  // Mixed layouts still compute the right values (the result is row-major then).
  EXPECT_TRUE(same_values(add(ca, b), add(a, b)));
  // A per-channel broadcast operand: right values whatever the layout.
  Tensor bias = uniform({1, 3, 1, 1}, 9);
  EXPECT_TRUE(same_values(add(ca, bias), add(a, bias)));
}

TEST(MemoryFormat, ReluGradientKeepsChannelsLast) {
  Tensor a = uniform({2, 3, 4, 5}, 10);
  Tensor x = a.contiguous(kCL).detach().requires_grad_();
  Tensor g = uniform({2, 3, 4, 5}, 11).contiguous(kCL);
  relu(x).backward(g);
  Tensor r = a.detach().requires_grad_();
  relu(r).backward(g.contiguous());
  EXPECT_TRUE(same_values(x.grad(), r.grad()));
}

TEST(MemoryFormat, Conv2dTakesAndGivesChannelsLast) {
  // The CPU kernels are row-major: the op converts around them, values must be identical.
  for (int64_t groups : {1, 2}) {
    SCOPED_TRACE(groups);
    Tensor x = uniform({2, 4, 7, 6}, 12, -1, 1, kFloat32);
    Tensor w = uniform({6, 4 / groups, 3, 3}, 13, -1, 1, kFloat32);
    Tensor b = uniform({6}, 14, -1, 1, kFloat32);
    Tensor xr = x.detach().requires_grad_(), wr = w.detach().requires_grad_(),
           br = b.detach().requires_grad_();
    Tensor xc = x.contiguous(kCL).detach().requires_grad_(), wc = w.detach().requires_grad_(),
           bc = b.detach().requires_grad_();
    Tensor want = conv2d(xr, wr, br, {2, 1}, {1, 1}, {1, 1}, groups);
    Tensor got = conv2d(xc, wc, bc, {2, 1}, {1, 1}, {1, 1}, groups);
    EXPECT_TRUE(is_channels_last_only(got));
    EXPECT_TRUE(same_values(got, want));
    Tensor g = uniform(want.shape(), 15, -1, 1, kFloat32);
    want.backward(g);
    got.backward(g.contiguous(kCL));
    EXPECT_TRUE(same_values(xc.grad(), xr.grad()));
    EXPECT_TRUE(wc.grad().is_contiguous());  // the parameter's own layout
    EXPECT_TRUE(same_values(wc.grad(), wr.grad()));
    EXPECT_TRUE(same_values(bc.grad(), br.grad()));
  }
}

TEST(MemoryFormat, BatchNormTakesAndGivesChannelsLast) {
  // Channels-last is normalised as an [N*H*W, C] matrix: the same statistics, summed in
  // another order, so equal to rounding.
  for (bool training : {true, false}) {
    SCOPED_TRACE(training);
    Tensor x = uniform({3, 5, 4, 6}, 16, -2, 3);
    Tensor rm = uniform({5}, 17), rv = uniform({5}, 18, 0.5, 2);
    Tensor rm2 = rm.clone(), rv2 = rv.clone();
    Tensor w = uniform({5}, 19).requires_grad_(), b = uniform({5}, 20).requires_grad_();
    Tensor w2 = w.detach().clone().requires_grad_(), b2 = b.detach().clone().requires_grad_();
    Tensor xr = x.detach().requires_grad_();
    Tensor xc = x.contiguous(kCL).detach().requires_grad_();
    Tensor want = batch_norm(xr, rm, rv, w, b, training, 0.1, 1e-5);
    Tensor got = batch_norm(xc, rm2, rv2, w2, b2, training, 0.1, 1e-5);
    EXPECT_TRUE(is_channels_last_only(got));
    EXPECT_TRUE(all_close(got.contiguous(), want, 1e-12, 1e-12));
    EXPECT_TRUE(all_close(rm2, rm, 1e-12, 1e-12));
    EXPECT_TRUE(all_close(rv2, rv, 1e-12, 1e-12));
    Tensor g = uniform(x.shape(), 21);
    want.backward(g);
    got.backward(g);
    EXPECT_TRUE(is_channels_last_only(xc.grad()));
    EXPECT_TRUE(all_close(xc.grad().contiguous(), xr.grad(), 1e-12, 1e-12));
    EXPECT_TRUE(all_close(w2.grad(), w.grad(), 1e-12, 1e-12));
    EXPECT_TRUE(all_close(b2.grad(), b.grad(), 1e-12, 1e-12));
  }
}

}  // namespace
