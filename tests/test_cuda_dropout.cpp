// The fused CUDA dropout kernels: bit for bit the composition they replaced on the device
// (outputs and gradients, awkward values included, from poisoned memory), bit for bit the CPU
// kernels for the same seed, and fresh masks on every replay of a CUDA graph equal to the
// eager calls that take the same generator offsets. Skipped without a GPU.
#include <vector>

#include "support/cuda_check.h"
#include "support/dropout_reference.h"

using namespace anvil;
using test::composed_dropout;
using test::dropout_input;
using test::kDropoutDTypes;
using test::same_bits;

namespace {

class CudaDropout : public test::CudaTest {};

TEST_F(CudaDropout, BitIdenticalToTheComposedFormula) {
  for (DType dt : kDropoutDTypes)
    for (double p : {0.1, 0.3, 0.9}) {
      Tensor x = dropout_input({4099}, 31, dt, /*specials=*/true).cuda();
      Generator g(5), h(5);
      Tensor expected = composed_dropout(x, p, h);
      test::poison_device_cache();
      EXPECT_TRUE(same_bits(dropout(x, p, true, &g), expected)) << dtype_name(dt) << " p " << p;
      EXPECT_EQ(g.offset(), h.offset()) << dtype_name(dt);
    }
}

TEST_F(CudaDropout, ConsecutiveCallsAdvanceTheGeneratorAsTheComposition) {
  for (DType dt : kDropoutDTypes) {
    Tensor x = dropout_input({37, 29}, 32, dt, /*specials=*/true).cuda();
    Generator g(77), h(77);
    Tensor b1 = composed_dropout(x, 0.4, h), b2 = composed_dropout(x, 0.4, h);
    test::poison_device_cache();
    Tensor a1 = dropout(x, 0.4, true, &g), a2 = dropout(x, 0.4, true, &g);
    EXPECT_TRUE(same_bits(a1, b1)) << dtype_name(dt);
    EXPECT_TRUE(same_bits(a2, b2)) << dtype_name(dt);
    EXPECT_FALSE(same_bits(a1, a2)) << dtype_name(dt);
    EXPECT_EQ(g.offset(), h.offset()) << dtype_name(dt);
  }
}

TEST_F(CudaDropout, GradientBitIdenticalToTheComposedFormula) {
  for (DType dt : kDropoutDTypes) {
    Tensor x = test::uniform({33, 31}, 33, -2, 2, dt).cuda().requires_grad_();
    Tensor xc = x.detach().clone().requires_grad_();
    Tensor up = dropout_input({33, 31}, 34, dt, /*specials=*/true).cuda();
    Generator g(8), h(8);
    composed_dropout(xc, 0.3, h).backward(up);
    test::poison_device_cache();  // the mask and the gradient come from poisoned memory
    Tensor y = dropout(x, 0.3, true, &g);
    test::poison_device_cache();
    y.backward(up);
    EXPECT_TRUE(same_bits(x.grad(), xc.grad())) << dtype_name(dt);
  }
  // A float64 gradient of a float32 output, transposed: multiplied in float64 through its
  // strides, then cast, as the composition's mul does.
  Tensor x = test::uniform({24, 40}, 35, -2, 2, kFloat32).cuda().requires_grad_();
  Tensor xc = x.detach().clone().requires_grad_();
  Tensor up = test::uniform({40, 24}, 36, -2, 2).cuda().t();
  Generator g(9), h(9);
  dropout(x, 0.3, true, &g).backward(up);
  composed_dropout(xc, 0.3, h).backward(up);
  EXPECT_TRUE(same_bits(x.grad(), xc.grad()));
}

TEST_F(CudaDropout, NonContiguousEmptyAndAllDropped) {
  for (DType dt : kDropoutDTypes) {
    Tensor x = dropout_input({30, 50}, 37, dt, /*specials=*/true).cuda().t();
    Generator g(10), h(10);
    EXPECT_TRUE(same_bits(dropout(x, 0.6, true, &g), composed_dropout(x, 0.6, h)))
        << dtype_name(dt);
    Tensor none = dropout(empty({3, 0}, TensorOptions(dt).device(kCUDA)), 0.5, true, &g);
    EXPECT_EQ(none.shape(), Shape({3, 0}));
    EXPECT_EQ(g.offset(), h.offset()) << dtype_name(dt);  // the empty call drew nothing
    EXPECT_TRUE(same_bits(dropout(x, 1.0, true, &g), mul(x, zeros_like(x)))) << dtype_name(dt);
    EXPECT_EQ(g.offset(), h.offset()) << dtype_name(dt);
  }
}

TEST_F(CudaDropout, SameSeedSameResultOnCpuAndCuda) {
  // Finite inputs: the two backends make different NaN payloads, and nothing else differs.
  for (DType dt : kDropoutDTypes)
    for (const Shape& shape : {Shape{4099}, Shape{(int64_t(1) << 20) + 3}}) {
      Tensor x = dropout_input(shape, 38, dt, /*specials=*/false);
      Tensor up = dropout_input(shape, 39, dt, /*specials=*/false);
      Tensor xc = x.clone().requires_grad_(), xg = x.cuda().requires_grad_();
      Generator on_cpu(2024), on_cuda(2024);
      Tensor c1 = dropout(xc, 0.3, true, &on_cpu), c2 = dropout(xc, 0.3, true, &on_cpu);
      test::poison_device_cache();
      Tensor g1 = dropout(xg, 0.3, true, &on_cuda), g2 = dropout(xg, 0.3, true, &on_cuda);
      EXPECT_TRUE(same_bits(g1, c1)) << dtype_name(dt) << " first call";
      EXPECT_TRUE(same_bits(g2, c2)) << dtype_name(dt) << " second call";
      EXPECT_EQ(on_cpu.offset(), on_cuda.offset());
      c1.backward(up);
      test::poison_device_cache();
      g1.backward(up.cuda());
      EXPECT_TRUE(same_bits(xg.grad(), xc.grad())) << dtype_name(dt) << " gradient";
    }
}

TEST_F(CudaDropout, GraphReplaysDrawFreshMasksAsEagerCallsDo) {
  const double p = 0.3;
  Tensor x = test::uniform({64, 33}, 41, -2, 2, kFloat32).cuda();
  Tensor up = test::uniform({64, 33}, 42, -2, 2, kFloat32).cuda();
  // Two eager steps from seed 17: the offsets the two replays must take.
  manual_seed(17);
  std::vector<Tensor> eager_out, eager_grad;
  for (int step = 0; step < 2; ++step) {
    Tensor leaf = x.detach().requires_grad_();
    Tensor y = dropout(leaf, p);
    eager_out.push_back(y.detach().cpu());
    eager_grad.push_back(autograd::grad({y}, {leaf}, {up})[0].cpu());
  }
  const uint64_t eager_offset = default_generator(kCUDA).offset();
  ASSERT_FALSE(same_bits(eager_out[0], eager_out[1]));

  manual_seed(17);
  Tensor leaf = x.detach().requires_grad_();
  CUDAGraph graph;
  graph.capture_begin();
  Tensor y = dropout(leaf, p);
  Tensor gx = autograd::grad({y}, {leaf}, {up})[0];
  graph.capture_end();
  EXPECT_EQ(default_generator(kCUDA).offset(), 0u);  // capturing drew nothing
  for (int step = 0; step < 2; ++step) {
    graph.replay();
    EXPECT_TRUE(same_bits(y.detach(), eager_out[size_t(step)])) << "replay " << step;
    EXPECT_TRUE(same_bits(gx, eager_grad[size_t(step)])) << "replay " << step;
  }
  EXPECT_EQ(default_generator(kCUDA).offset(), eager_offset);
}

}  // namespace
