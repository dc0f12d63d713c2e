// CUDA op kernels against the CPU reference: element-wise (binary, unary, activations and their
// gradients, where/clamp), reductions, softmax, cross-entropy, random fills and gathers/scatters,
// over odd sizes, zero-size and non-contiguous operands; bad indices and targets, which the
// device records and the next synchronisation raises. Skipped without a GPU.
//
// Outputs are compared in full. Kernels write into Tensor::empty memory, which is not
// initialised, so an element a kernel forgets to write shows up as a mismatch; SetUp also
// leaves freed 0xFF-filled blocks behind so that reused device memory is poisoned, not zero.
#include <cmath>
#include <functional>

#include "support/cuda_check.h"

using namespace anvil;

namespace {

using test::close;
using test::message_of;
using test::Tol;

class CudaOps : public test::CudaTest {};

using View = std::function<Tensor(const Tensor&)>;

// A base shape and a view of it: the same view is taken of the CPU tensor and its CUDA copy.
struct Layout {
  const char* name;
  Shape base;
  View view;
};

Tensor same(const Tensor& t) { return t; }

std::vector<Layout> layouts() {
  return {
      {"scalar", {}, same},
      {"one", {1}, same},
      {"seven", {7}, same},
      {"1023", {1023}, same},
      {"4097", {4097}, same},
      {"empty", {0}, same},
      {"empty-2d", {3, 0, 5}, same},
      {"matrix", {33, 65}, same},
      {"transposed", {33, 65}, [](const Tensor& t) { return t.t(); }},
      {"stepped", {40, 30}, [](const Tensor& t) { return t.slice(0, 1, 40, 3).slice(1, 2, 30, 2); }},
      {"expanded", {5, 1, 7}, [](const Tensor& t) { return t.expand({5, 6, 7}); }},
      {"permuted", {4, 6, 8}, [](const Tensor& t) { return t.permute({2, 0, 1}); }},
  };
}

struct Pair {
  Tensor cpu, cuda;
};

// uniform(lo, hi) values of `dtype` in `layout`, on both devices.
Pair make(const Layout& l, uint64_t seed, DType dtype, double lo = -2, double hi = 2) {
  Tensor base = test::uniform(l.base, seed, lo, hi).to(dtype);
  return {l.view(base), l.view(base.cuda())};
}

Tol tol_for(DType dt) {
  switch (dt) {
    case kFloat32: return {1e-5, 1e-6};
    case kFloat64: return {1e-12, 1e-12};
    case kFloat16:
    case kBFloat16: return {1e-2, 1e-3};
    default: return {0, 0};
  }
}

const DType kFloats[] = {kFloat32, kFloat64, kBFloat16, kFloat16};
const DType kNumeric[] = {kFloat32, kFloat64, kBFloat16, kFloat16, kInt32, kInt64, kUInt8};

// ---- binary -------------------------------------------------------------------------------

using BinaryOpFn = Tensor (*)(const Tensor&, const Tensor&);
Tensor add2(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor sub2(const Tensor& a, const Tensor& b) { return sub(a, b); }

TEST_F(CudaOps, BinaryArithmeticAndComparisons) {
  const std::pair<const char*, BinaryOpFn> ops[] = {
      {"add", add2},     {"sub", sub2},       {"mul", mul},       {"div", div},
      {"maximum", maximum}, {"minimum", minimum}, {"eq", eq}, {"ne", ne},
      {"lt", lt},        {"le", le},          {"gt", gt},         {"ge", ge},
      {"logical_and", logical_and}, {"logical_or", logical_or}};
  for (const Layout& l : layouts())
    for (DType dt : kNumeric) {
      const bool u8 = dt == kUInt8;
      Pair a = make(l, 1, dt, u8 ? 0 : -50, 50), b = make(l, 2, dt, u8 ? 0 : -50, 50);
      for (auto [name, f] : ops) {
        if (u8 && std::string(name) == "sub") continue;  // wraps identically, but skip the noise
        EXPECT_TRUE(close(f(a.cuda, b.cuda), f(a.cpu, b.cpu), tol_for(f(a.cpu, b.cpu).dtype())))
            << name << " " << dtype_name(dt) << " " << l.name;
      }
    }
}

TEST_F(CudaOps, BinaryBroadcastPromotionAndScalars) {
  for (DType dt : kFloats) {
    Tensor a = test::uniform({5, 1, 7}, 3).to(dt), b = test::uniform({6, 1}, 4).to(dt);
    Tol t = tol_for(dt);
    EXPECT_TRUE(close(add(a.cuda(), b.cuda()), add(a, b), t)) << dtype_name(dt);
    EXPECT_TRUE(close(mul(a.cuda().transpose(0, 2), b.cuda()), mul(a.transpose(0, 2), b), t))
        << dtype_name(dt);
    EXPECT_TRUE(close(sub(a.cuda(), 2.5), sub(a, 2.5), t)) << dtype_name(dt);
    EXPECT_TRUE(close(1.5 / a.cuda(), 1.5 / a, t)) << dtype_name(dt);
  }
  // int32 + float32 promotes; integer true division gives float32.
  Tensor i = test::uniform({9, 4}, 5, -20, 20).to(kInt32), f = test::uniform({4}, 6).to(kFloat32);
  EXPECT_TRUE(close(add(i.cuda(), f.cuda()), add(i, f), tol_for(kFloat32)));
  EXPECT_TRUE(close(div(i.cuda(), i.cuda() + 100), div(i, i + 100), tol_for(kFloat32)));
  // bool arithmetic is logic.
  Tensor p = gt(test::uniform({17}, 7), 0.0), q = gt(test::uniform({17}, 8), 0.0);
  EXPECT_TRUE(close(add(p.cuda(), q.cuda()), add(p, q), {0, 0}));
  EXPECT_TRUE(close(mul(p.cuda(), q.cuda()), mul(p, q), {0, 0}));
}

TEST_F(CudaOps, PowAndNaN) {
  for (DType dt : kFloats) {
    Tensor a = test::uniform({1023}, 9, 0.1, 3).to(dt), b = test::uniform({1023}, 10, -3, 3).to(dt);
    EXPECT_TRUE(close(pow(a.cuda(), b.cuda()), pow(a, b), tol_for(dt))) << dtype_name(dt);
  }
  // Integer pow (negative exponents as torch).
  Tensor ia = test::uniform({200}, 11, -5, 5).to(kInt64), ib = test::uniform({200}, 12, -2, 6).to(kInt64);
  EXPECT_TRUE(close(pow(ia.cuda(), ib.cuda()), pow(ia, ib), {0, 0}));
  // NaN propagates through maximum/minimum and compares false.
  Tensor x = tensor<float>({NAN, 1, -1, NAN, 0}), y = tensor<float>({0, NAN, 2, NAN, -0.0f});
  for (BinaryOpFn f : {BinaryOpFn(maximum), BinaryOpFn(minimum), BinaryOpFn(lt), BinaryOpFn(eq),
                       BinaryOpFn(ne)})
    EXPECT_TRUE(close(f(x.cuda(), y.cuda()), f(x, y), {0, 0}));
}

TEST_F(CudaOps, InPlaceBinary) {
  Tensor a = test::uniform({33, 65}, 13).to(kFloat32), b = test::uniform({65}, 14).to(kFloat32);
  Tensor ac = a.cuda(), at = a.clone();
  add_(ac, b.cuda(), 2.0);
  add_(at, b, 2.0);
  EXPECT_TRUE(close(ac, at, tol_for(kFloat32)));
  Tensor tc = a.cuda().t(), tt = a.clone().t();  // in place into a transposed view
  mul_(tc, b.cuda().unsqueeze(1));
  mul_(tt, b.unsqueeze(1));
  EXPECT_TRUE(close(tc, tt, tol_for(kFloat32)));
}

// ---- unary and activations ----------------------------------------------------------------

using UnaryFnPtr = std::function<Tensor(const Tensor&)>;
std::vector<std::pair<const char*, UnaryFnPtr>> float_unaries() {
  return {{"neg", [](const Tensor& x) { return neg(x); }},
          {"exp", [](const Tensor& x) { return exp(x); }},
          {"log", [](const Tensor& x) { return log(x); }},
          {"sqrt", [](const Tensor& x) { return sqrt(x); }},
          {"rsqrt", [](const Tensor& x) { return rsqrt(x); }},
          {"abs", [](const Tensor& x) { return abs(x); }},
          {"sign", [](const Tensor& x) { return sign(x); }},
          {"square", [](const Tensor& x) { return square(x); }},
          {"sin", [](const Tensor& x) { return sin(x); }},
          {"cos", [](const Tensor& x) { return cos(x); }},
          {"relu", [](const Tensor& x) { return relu(x); }},
          {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.1); }},
          {"elu", [](const Tensor& x) { return elu(x, 0.7); }},
          {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
          {"tanh", [](const Tensor& x) { return tanh(x); }},
          {"silu", [](const Tensor& x) { return silu(x); }},
          {"gelu", [](const Tensor& x) { return gelu(x); }},
          {"gelu_tanh", [](const Tensor& x) { return gelu(x, "tanh"); }},
          {"logical_not", [](const Tensor& x) { return logical_not(x); }},
          {"isnan", [](const Tensor& x) { return isnan(x); }}};
}

TEST_F(CudaOps, UnaryFloat) {
  for (const Layout& l : layouts())
    for (DType dt : kFloats) {
      Pair x = make(l, 21, dt, -3, 3);  // log/sqrt of negatives: NaN on both devices
      for (auto& [name, f] : float_unaries())
        EXPECT_TRUE(close(f(x.cuda), f(x.cpu), tol_for(dt)))
            << name << " " << dtype_name(dt) << " " << l.name;
    }
  // NaN, infinities and signed zeros.
  Tensor s = tensor<float>({NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-30f, -100.0f});
  for (auto& [name, f] : float_unaries())
    EXPECT_TRUE(close(f(s.cuda()), f(s), tol_for(kFloat32))) << name;
}

TEST_F(CudaOps, UnaryInteger) {
  for (DType dt : {kInt32, kInt64, kUInt8})
    for (const Layout& l : layouts()) {
      Pair x = make(l, 22, dt, dt == kUInt8 ? 0 : -100, 100);
      for (auto& [name, f] : float_unaries()) {
        const std::string op = name;
        if (op != "neg" && op != "abs" && op != "sign" && op != "square" && op != "relu" &&
            op != "logical_not" && op != "isnan")
          continue;
        EXPECT_TRUE(close(f(x.cuda), f(x.cpu), {0, 0}))
            << name << " " << dtype_name(dt) << " " << l.name;
      }
      // Floating math on integers converts first.
      EXPECT_TRUE(close(exp(x.cuda), exp(x.cpu), tol_for(kFloat32))) << dtype_name(dt);
    }
}

TEST_F(CudaOps, ActivationGradients) {
  const std::vector<std::pair<const char*, UnaryFnPtr>> acts = {
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.1); }},
      {"elu", [](const Tensor& x) { return elu(x, 0.7); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"silu", [](const Tensor& x) { return silu(x); }},
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, "tanh"); }},
      {"exp", [](const Tensor& x) { return exp(x); }},
      {"abs", [](const Tensor& x) { return abs(x); }}};
  for (DType dt : kFloats)
    for (const Layout& l : {layouts()[3], layouts()[8], layouts()[9]}) {
      Tensor base = test::uniform(l.base, 23, -3, 3).to(dt);
      Tensor g = test::uniform(l.view(base).shape(), 24).to(dt);
      for (auto& [name, f] : acts) {
        Tensor xc = base.clone().requires_grad_(), xg = base.cuda().requires_grad_();
        f(l.view(xc)).backward(g);
        f(l.view(xg)).backward(g.cuda());
        EXPECT_TRUE(close(xg.grad(), xc.grad(), tol_for(dt)))
            << name << " " << dtype_name(dt) << " " << l.name;
      }
    }
}

// ---- where, clamp -------------------------------------------------------------------------

TEST_F(CudaOps, WhereAndClamp) {
  for (const Layout& l : layouts())
    for (DType dt : kNumeric) {
      const bool u8 = dt == kUInt8;
      Pair a = make(l, 31, dt, u8 ? 0 : -10, 10), b = make(l, 32, dt, u8 ? 0 : -10, 10);
      Pair c = make(l, 33, kFloat64);
      Tensor kc = gt(c.cpu, 0.0), kg = gt(c.cuda, 0.0);
      EXPECT_TRUE(close(where(kg, a.cuda, b.cuda), where(kc, a.cpu, b.cpu), {0, 0}))
          << dtype_name(dt) << " " << l.name;
      EXPECT_TRUE(close(clamp(a.cuda, u8 ? 2 : -3, 5), clamp(a.cpu, u8 ? 2 : -3, 5), {0, 0}))
          << dtype_name(dt) << " " << l.name;
      EXPECT_TRUE(close(clamp_min(a.cuda, 1), clamp_min(a.cpu, 1), {0, 0})) << dtype_name(dt);
    }
  // Broadcast condition and tensor bounds; NaN passes through clamp.
  Tensor x = tensor<float>({NAN, -5, 0.5f, 7, 2}), lo = tensor<float>({0}), hi = tensor<float>({1, 1, 1, 1, 3});
  EXPECT_TRUE(close(clamp(x.cuda(), -1, 1), clamp(x, -1, 1), {0, 0}));
  EXPECT_TRUE(close(maximum(minimum(x.cuda(), hi.cuda()), lo.cuda()),
                          maximum(minimum(x, hi), lo), {0, 0}));
  Tensor cond = gt(test::uniform({6, 1}, 34), 0.0), p = test::uniform({1, 5}, 35).to(kFloat32);
  EXPECT_TRUE(close(where(cond.cuda(), p.cuda(), x.cuda()), where(cond, p, x), {0, 0}));
}

// ---- reductions ---------------------------------------------------------------------------

TEST_F(CudaOps, Reductions) {
  struct R {
    Shape shape;
    Dims dims;
  };
  // Short rows (a warp per row), long rows (a block per row), one row, many rows.
  const R cases[] = {{{7, 1023}, {1}},  {{7, 1023}, {0}},   {{3, 4097}, {1}},  {{4097}, {}},
                     {{1, 1}, {0, 1}},  {{5, 6, 7}, {0, 2}}, {{200000}, {0}},  {{2, 3, 4}, {}},
                     {{0, 5}, {1}},     {{64, 33}, {1}}};
  for (const R& c : cases)
    for (DType dt : {kFloat32, kFloat64, kBFloat16, kInt32, kInt64, kUInt8, kBool}) {
      Tensor x = test::uniform(c.shape, 41, dt == kUInt8 ? 0 : -100, 100).to(dt);
      if (dt == kBool) x = gt(test::uniform(c.shape, 41), 0.0);
      Tensor xg = x.cuda();
      Tol t = tol_for(dt);
      const std::string what = std::string(dtype_name(dt)) + " " + to_string(c.shape);
      EXPECT_TRUE(close(sum(xg, c.dims), sum(x, c.dims), t)) << "sum " << what;
      if (x.dim() == 2) {  // a transposed input (made contiguous by the op)
        EXPECT_TRUE(close(sum(xg.t(), {0}), sum(x.t(), {0}), t)) << "sum^T " << what;
      }
      if (x.numel() == 0) continue;  // max/argmax over zero-size dims are refused
      EXPECT_TRUE(close(amax(xg, c.dims), amax(x, c.dims), {0, 0})) << "amax " << what;
      EXPECT_TRUE(close(amin(xg, c.dims), amin(x, c.dims), {0, 0})) << "amin " << what;
      if (is_floating(dt)) {
        EXPECT_TRUE(close(mean(xg, c.dims), mean(x, c.dims), t)) << "mean " << what;
        EXPECT_TRUE(close(var(xg, c.dims), var(x, c.dims), t)) << "var " << what;
        EXPECT_TRUE(close(std_dev(xg, c.dims, 0), std_dev(x, c.dims, 0), t)) << "std " << what;
      }
      if (c.dims.size() == 1) {
        ValuesIndices mg = max(xg, c.dims[0]), mc = max(x, c.dims[0]);
        EXPECT_TRUE(close(mg.values, mc.values, {0, 0})) << "max " << what;
        EXPECT_TRUE(close(mg.indices, mc.indices, {0, 0})) << "max " << what;
        EXPECT_TRUE(close(argmin(xg, c.dims[0]), argmin(x, c.dims[0]), {0, 0})) << what;
      }
      EXPECT_TRUE(close(argmax(xg), argmax(x), {0, 0})) << "argmax " << what;
    }
}

TEST_F(CudaOps, ArgExtremaTiesAndNaN) {
  // Few distinct values: many ties, first index wins; NaN wins wherever it is.
  for (int64_t n : {5, 1023, 4097}) {
    Tensor x = test::uniform({4, n}, 42, 0, 3).to(kInt64).to(kFloat32);
    x.select(0, 1).select(0, n / 2).fill_(NAN);
    x.select(0, 2).select(0, n - 1).fill_(NAN);
    x.select(0, 2).select(0, 1).fill_(NAN);
    Tensor xg = x.cuda();
    for (int64_t d : {0, 1}) {
      EXPECT_TRUE(close(argmax(xg, d), argmax(x, d), {0, 0})) << n << " dim " << d;
      EXPECT_TRUE(close(argmin(xg, d), argmin(x, d), {0, 0})) << n << " dim " << d;
      EXPECT_TRUE(close(amax(xg, {d}), amax(x, {d}), {0, 0})) << n << " dim " << d;
      EXPECT_TRUE(close(amin(xg, {d}), amin(x, {d}), {0, 0})) << n << " dim " << d;
    }
  }
}

TEST_F(CudaOps, ReductionGradients) {
  Tensor base = test::uniform({7, 1023}, 43).to(kFloat32);
  const std::vector<std::function<Tensor(const Tensor&)>> fs = {
      [](const Tensor& x) { return sum(x, {1}); },
      [](const Tensor& x) { return mean(x, {0}); },
      [](const Tensor& x) { return amax(x, {1}); },
      [](const Tensor& x) { return var(x, {1}); },
      [](const Tensor& x) { return max(x, 0).values; }};
  for (size_t i = 0; i < fs.size(); ++i) {
    Tensor xc = base.clone().requires_grad_(), xg = base.cuda().requires_grad_();
    sum(mul(fs[i](xc), fs[i](xc))).backward();
    sum(mul(fs[i](xg), fs[i](xg))).backward();
    EXPECT_TRUE(close(xg.grad(), xc.grad(), {1e-4, 1e-6})) << "function " << i;
  }
}

// ---- softmax ------------------------------------------------------------------------------

TEST_F(CudaOps, SoftmaxForwardBackward) {
  struct S {
    Shape shape;
    int64_t dim;
    bool transpose;
  };
  const S cases[] = {{{7, 1023}, 1, false}, {{3, 4097}, 1, false}, {{5, 6, 7}, 1, false},
                     {{5, 6, 7}, 0, false}, {{33, 65}, 1, true},   {{1, 1}, 0, false},
                     {{0, 5}, 1, false},    {{1000, 3}, 1, false}, {{4, 2000}, 0, true}};
  for (const S& c : cases)
    for (DType dt : {kFloat32, kFloat64, kBFloat16})
      for (bool log : {false, true}) {
        auto f = [&](const Tensor& x) { return log ? log_softmax(x, c.dim) : softmax(x, c.dim); };
        Tensor base = test::uniform(c.shape, 51, -5, 5).to(dt);
        View view = c.transpose ? View([](const Tensor& t) { return t.t(); }) : View(same);
        Tensor g = test::uniform(view(base).shape(), 52).to(dt);
        Tensor xc = base.clone().requires_grad_(), xg = base.cuda().requires_grad_();
        Tensor yc = f(view(xc)), yg = f(view(xg));
        const std::string what = std::string(log ? "log_softmax " : "softmax ") +
                                 dtype_name(dt) + " " + to_string(c.shape) + " dim " +
                                 std::to_string(c.dim);
        EXPECT_TRUE(close(yg, yc, tol_for(dt))) << what;
        yc.backward(g);
        yg.backward(g.cuda());
        EXPECT_TRUE(close(xg.grad(), xc.grad(), tol_for(dt))) << what;
      }
  // Infinities: -inf entries get 0; a row of -inf is NaN on both.
  Tensor x = tensor<float>({-INFINITY, 0, 1, -INFINITY, -INFINITY, -INFINITY}, {2, 3});
  EXPECT_TRUE(close(softmax(x.cuda(), 1), softmax(x, 1), tol_for(kFloat32)));
  EXPECT_TRUE(close(log_softmax(x.cuda(), 1), log_softmax(x, 1), tol_for(kFloat32)));
}

// ---- cross-entropy ------------------------------------------------------------------------

TEST_F(CudaOps, CrossEntropy) {
  struct C {
    int64_t m, c;
  };
  for (C s : {C{1, 7}, C{33, 10}, C{17, 1500}, C{5, 1}})
    for (DType dt : {kFloat32, kFloat64, kBFloat16})
      for (bool weighted : {false, true})
        for (double smoothing : {0.0, 0.1})
          for (Reduction red : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
            Tensor logits = test::uniform({s.m, s.c}, 61, -4, 4).to(dt);
            Tensor target = test::uniform({s.m}, 62, 0, double(s.c)).to(kInt64);
            if (s.m > 2) target.select(0, 1).fill_(-100);  // ignored row
            Tensor w = weighted ? test::uniform({s.c}, 63, 0.5, 2).to(kFloat32) : Tensor();
            Tensor g = red == Reduction::None ? test::uniform({s.m}, 64).to(dt) : Tensor();
            Tensor xc = logits.clone().requires_grad_(), xg = logits.cuda().requires_grad_();
            Tensor lc = cross_entropy(xc, target, w, red, -100, smoothing);
            Tensor lg = cross_entropy(xg, target.cuda(), weighted ? w.cuda() : w, red, -100, smoothing);
            const std::string what = std::string(dtype_name(dt)) + " m=" + std::to_string(s.m) +
                                     " c=" + std::to_string(s.c) + " w=" + std::to_string(weighted) +
                                     " e=" + std::to_string(smoothing);
            EXPECT_TRUE(close(lg, lc, tol_for(dt))) << what;
            if (red == Reduction::None) {
              lc.backward(g);
              lg.backward(g.cuda());
            } else {
              lc.backward();
              lg.backward();
            }
            EXPECT_TRUE(close(xg.grad(), xc.grad(), tol_for(dt))) << what;
          }
  // [N, C, d] logits (class dim moved last by the op).
  Tensor x = test::uniform({3, 5, 4}, 65).to(kFloat32), t = test::uniform({3, 4}, 66, 0, 5).to(kInt64);
  EXPECT_TRUE(close(cross_entropy(x.cuda(), t.cuda()), cross_entropy(x, t), tol_for(kFloat32)));
}

TEST_F(CudaOps, CrossEntropyTargetOutOfRange) {
  Tensor x = test::uniform({4, 6}, 67).to(kFloat32);
  for (int64_t bad : {6, -1, 100}) {
    Tensor t = tensor<int64_t>({0, 5, bad, 7});
    std::string cpu = message_of<IndexError>([&] { cross_entropy(x, t); });
    EXPECT_NE(cpu.find("out of bounds"), std::string::npos) << cpu;
    // The op does not wait for the device's check: the error surfaces at the next
    // synchronisation (reading the loss), once, with the CPU's message.
    Tensor xg = x.cuda().requires_grad_(), loss;
    EXPECT_NO_THROW(loss = cross_entropy(xg, t.cuda()));
    EXPECT_EQ(message_of<IndexError>([&] { loss.item<float>(); }), cpu) << "bad " << bad;
    // The backward reads nothing through the bad targets: their rows get zero gradients.
    EXPECT_NO_THROW(loss.backward());
    EXPECT_NO_THROW(cuda_synchronize());
    ASSERT_TRUE(xg.grad().defined());
    EXPECT_TRUE(equal(xg.grad().cpu().slice(0, 2, 4), zeros({2, 6}))) << "bad " << bad;
  }
}

// ---- random -------------------------------------------------------------------------------

TEST_F(CudaOps, RandomMatchesCpu) {
  for (int64_t n : {0, 1, 7, 1023, 4097})
    for (DType dt : kFloats) {
      Generator gc(1234), gg(1234);
      const TensorOptions host(dt), dev = TensorOptions(dt).device(kCUDA);
      // Uniform draws are bit-identical; so are two draws in a row (the offsets advance alike).
      for (int rep = 0; rep < 2; ++rep)
        EXPECT_TRUE(close(rand({n}, dev, &gg), rand({n}, host, &gc), {0, 0}))
            << "rand " << dtype_name(dt) << " " << n;
      // Normal draws use log/cos/sin, whose CUDA and glibc versions may differ in the last bit
      // of a double: exact after rounding to 32 bits or fewer, 1e-14 for float64.
      Tol t = dt == kFloat64 ? Tol{1e-14, 1e-15} : Tol{0, 0};
      EXPECT_TRUE(close(randn({n}, dev, &gg), randn({n}, host, &gc), t))
          << "randn " << dtype_name(dt) << " " << n;
      EXPECT_EQ(gg.offset(), gc.offset());
    }
  for (DType dt : {kInt64, kInt32, kUInt8, kFloat32}) {
    Generator gc(99), gg(99);
    const TensorOptions host(dt), dev = TensorOptions(dt).device(kCUDA);
    EXPECT_TRUE(close(randint(-7, 200, {4097}, dev, &gg), randint(-7, 200, {4097}, host, &gc),
                            {0, 0}))
        << dtype_name(dt);
  }
  // A range wider than 2^32 takes two lanes per element.
  Generator gc(5), gg(5);
  const int64_t big = int64_t(1) << 40;
  EXPECT_TRUE(close(randint(-big, big, {1023}, TensorOptions(kInt64).device(kCUDA), &gg),
                          randint(-big, big, {1023}, kInt64, &gc), {0, 0}));
  // In place into a non-contiguous tensor.
  Generator hc(6), hg(6);
  Tensor tc = zeros({8, 9}).t(), tg = full({8, 9}, NAN, kCUDA).t();  // poisoned: all overwritten
  uniform_(tc, -3, 2, &hc);
  uniform_(tg, -3, 2, &hg);
  EXPECT_TRUE(close(tg, tc, {0, 0}));
  normal_(tc, 1, 2, &hc);
  normal_(tg, 1, 2, &hg);
  EXPECT_TRUE(close(tg, tc, {0, 0}));
}

// ---- gathers and scatters -----------------------------------------------------------------

TEST_F(CudaOps, IndexSelectGatherScatter) {
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kInt64, kUInt8})
    for (DType it : {kInt64, kInt32}) {
      Tensor a = test::uniform({6, 7, 5}, 71, 0, 50).to(dt);
      Tensor ag = a.cuda();
      for (int64_t d : {0, 1, 2}) {
        // Duplicates included.
        Tensor idx = test::uniform({9}, 72 + uint64_t(d), 0, double(a.size(d))).to(it);
        EXPECT_TRUE(close(index_select(ag, d, idx.cuda()), index_select(a, d, idx), {0, 0}))
            << dtype_name(dt) << " dim " << d;
        Tensor small = test::uniform({6}, 74, 0, 5).to(it);  // into a transposed input
        EXPECT_TRUE(close(index_select(ag.transpose(0, 2), 0, small.cuda()),
                                index_select(a.transpose(0, 2), 0, small), {0, 0}))
            << dtype_name(dt);
        // gather with an index smaller than the input in the other dims.
        Shape is = {4, 5, 3};
        is[size_t(d)] = 8;
        Tensor gi = test::uniform(is, 75 + uint64_t(d), 0, double(a.size(d))).to(it);
        EXPECT_TRUE(close(gather(ag, d, gi.cuda()), gather(a, d, gi), {0, 0}))
            << dtype_name(dt) << " dim " << d;
        // scatter_add accumulates duplicates, in any order on CUDA (so floats may round apart).
        Tensor src = test::uniform(is, 78, 0, 4).to(kInt64).to(dt);
        EXPECT_TRUE(close(scatter_add(ag, d, gi.cuda(), src.cuda()), scatter_add(a, d, gi, src),
                                tol_for(dt)))
            << dtype_name(dt) << " dim " << d;
      }
      Tensor empty_idx = Tensor::empty({0}, it);
      EXPECT_TRUE(close(index_select(ag, 1, empty_idx.cuda()), index_select(a, 1, empty_idx),
                              {0, 0}));
    }
}

TEST_F(CudaOps, IndexGradientsAndEmbedding) {
  Tensor w = test::uniform({11, 6}, 81).to(kFloat64);
  Tensor ids = tensor<int64_t>({3, 0, 3, 10, 7, 3, 1}, {7});
  Tensor wc = w.clone().requires_grad_(), wg = w.cuda().requires_grad_();
  Tensor g = test::uniform({7, 6}, 82).to(kFloat64);
  embedding(wc, ids).backward(g);
  embedding(wg, ids.cuda()).backward(g.cuda());
  EXPECT_TRUE(close(wg.grad(), wc.grad(), tol_for(kFloat64)));
  Tensor gi = test::uniform({11, 3}, 83, 0, 6).to(kInt64);
  Tensor xc = w.clone().requires_grad_(), xg = w.cuda().requires_grad_();
  Tensor gg = test::uniform({11, 3}, 84).to(kFloat64);
  gather(xc, 1, gi).backward(gg);
  gather(xg, 1, gi.cuda()).backward(gg.cuda());
  EXPECT_TRUE(close(xg.grad(), xc.grad(), tol_for(kFloat64)));
  // bf16 sums of duplicates may round differently in another order.
  Tensor wb = w.to(kBFloat16);
  Tensor bc = wb.clone().requires_grad_(), bg = wb.cuda().requires_grad_();
  index_select(bc, 0, ids).backward(g.to(kBFloat16));
  index_select(bg, 0, ids.cuda()).backward(g.to(kBFloat16).cuda());
  EXPECT_TRUE(close(bg.grad(), bc.grad(), tol_for(kBFloat16)));
}

TEST_F(CudaOps, IndexOutOfRangeRaisesLikeCpu) {
  Tensor a = test::uniform({4, 5}, 85).to(kFloat32);
  for (DType it : {kInt64, kInt32}) {
    Tensor bad = tensor<int64_t>({0, 2, 5, -1}).to(it);
    // On CUDA the op only enqueues the check: the error surfaces at the next synchronisation,
    // a copy to the host or cuda_synchronize(), with the CPU's type and message.
    auto same_error = [&](const std::function<Tensor(const Tensor&, const Tensor&)>& f) {
      std::string cpu = message_of<IndexError>([&] { f(a, bad); });
      EXPECT_NE(cpu.find("out of range"), std::string::npos) << cpu;
      Tensor out;
      EXPECT_NO_THROW(out = f(a.cuda(), bad.cuda())) << cpu;
      EXPECT_EQ(message_of<IndexError>([&] { out.cpu(); }), cpu);
      EXPECT_NO_THROW(cuda_synchronize()) << "raised once";
      EXPECT_NO_THROW(f(a.cuda(), bad.cuda()));
      EXPECT_EQ(message_of<IndexError>([] { cuda_synchronize(); }), cpu);
    };
    same_error([](const Tensor& x, const Tensor& i) { return index_select(x, 1, i); });
    same_error([](const Tensor& x, const Tensor& i) { return gather(x, 1, i.reshape({1, 4})); });
    same_error([](const Tensor& x, const Tensor& i) {
      return scatter_add(x, 1, i.reshape({1, 4}), ones({1, 4}, x.options()));
    });
    same_error([](const Tensor& x, const Tensor& i) { return embedding(x.t(), i); });
  }
}

TEST_F(CudaOps, BadIndexTouchesNothingAndTheErrorClears) {
  // Indices far outside the tensor: reading or writing through one would fault and poison the
  // whole context, so getting the IndexError at all shows that no kernel used them.
  const int64_t far = int64_t(1) << 40;
  Tensor a = test::uniform({4, 5}, 86).to(kFloat32), ag = a.cuda();
  Tensor bad = tensor<int64_t>({1, far, 3, -far}), bad_g = bad.cuda();
  const std::string expected =
      "index " + std::to_string(far) + " is out of range for dimension 1 of size 5";
  EXPECT_EQ(message_of<IndexError>([&] { index_select(a, 1, bad); }),
            message_of<IndexError>([&] { index_select(ag, 1, bad_g).cpu(); }));
  EXPECT_TRUE(test::throws_with<IndexError>(
      [&] {
        gather(ag, 1, bad_g.reshape({1, 4}));
        cuda_synchronize();
      },
      {"gather: ", expected}));
  // A scatter writes nothing when an index is bad, as the CPU refuses before writing: the
  // result still holds its input. Reading it raises the error, reading it again does not.
  Tensor scattered = scatter_add(ag, 1, bad_g.reshape({1, 4}), ones({1, 4}, ag.options()));
  EXPECT_TRUE(test::throws_with<IndexError>([&] { scattered.cpu(); }, {"scatter_add: ", expected}));
  EXPECT_TRUE(equal(scattered.cpu(), a));
  // The first error is kept until it is raised; later ones are dropped, not queued.
  index_select(ag, 0, tensor<int64_t>({7}).cuda());
  index_select(ag, 1, bad_g);
  EXPECT_TRUE(test::throws_with<IndexError>(
      [] { cuda_synchronize(); }, {"index_select: index 7 is out of range for dimension 0"}));
  EXPECT_NO_THROW(cuda_synchronize());
  // The device works on: good indices give the CPU's results.
  Tensor good = tensor<int64_t>({4, 0, 4, 2});
  EXPECT_TRUE(close(index_select(ag, 1, good.cuda()), index_select(a, 1, good), {0, 0}));
  EXPECT_TRUE(close(gather(ag, 1, good.reshape({1, 4}).cuda()), gather(a, 1, good.reshape({1, 4})),
                    {0, 0}));
  EXPECT_NO_THROW(cuda_synchronize());
}

}  // namespace
