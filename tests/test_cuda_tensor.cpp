// CUDA tensors: memory and copies against the CPU reference, and synchronisation. Skipped
// without a GPU (test_device.cpp checks the behaviour there).
#include "support/cuda_check.h"

using namespace anvil;

class CudaTensor : public test::CudaTest {};

TEST_F(CudaTensor, RoundTripKeepsValuesForEveryDType) {
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16, kInt32, kInt64, kUInt8, kBool}) {
    Tensor host = test::uniform({7, 5}, 3, -50, 50).to(dt);
    Tensor back = host.to(kCUDA).to(kCPU);
    EXPECT_EQ(back.dtype(), dt);
    EXPECT_TRUE(equal(back, host)) << dtype_name(dt);
  }
}

TEST_F(CudaTensor, StridedAndConvertingCopies) {
  Tensor host = test::uniform({6, 4}, 5);
  Tensor dev = host.to(kCUDA);
  // A transposed view on the device, copied back densely.
  EXPECT_TRUE(equal(dev.t().contiguous().cpu(), host.t().contiguous()));
  // A conversion on the device matches the CPU's.
  EXPECT_TRUE(equal(dev.to(kFloat16).cpu(), host.to(kFloat16)));
  // Host -> device into a strided float32 destination (converting from float64), poisoned so
  // that an element the copy misses shows.
  Tensor target = full({4, 6}, NAN, kCUDA).t();
  target.copy_(host);
  EXPECT_TRUE(equal(target.cpu(), host.to(kFloat32)));
}

TEST_F(CudaTensor, FillAndCreation) {
  Tensor z = zeros({3, 3}, TensorOptions(kFloat64).device(kCUDA));
  EXPECT_EQ(z.device(), kCUDA);
  EXPECT_TRUE(equal(z.cpu(), zeros({3, 3}, kFloat64)));
  EXPECT_TRUE(equal(full({2, 2}, 2.5, kCUDA).cpu(), full({2, 2}, 2.5)));
  EXPECT_TRUE(equal(eye(4, 3, kCUDA).cpu(), eye(4, 3)));
  EXPECT_EQ(full({}, 7, TensorOptions(kInt64).device(kCUDA)).item<int64_t>(), 7);
}

TEST_F(CudaTensor, CopiesAreStreamOrdered) {
  // Copies and kernels queue on one stream without waiting; a device -> host copy waits for
  // everything before it. A chain of dependent device work must read back in order.
  Tensor host = test::uniform({1 << 20}, 6);
  Tensor dev = host.to(kCUDA);
  Tensor acc = zeros({1 << 20}, TensorOptions(kFloat64).device(kCUDA));
  for (int i = 0; i < 8; ++i) {
    acc.copy_(add(acc, dev));             // device -> device copy after a kernel
    dev.copy_(mul(host, double(i + 2)));  // host -> device over memory a kernel just read
  }
  Tensor expected = zeros({1 << 20}, kFloat64);
  for (int i = 0; i < 8; ++i) expected = add(expected, mul(host, double(i + 1)));
  EXPECT_TRUE(test::all_close(acc.cpu(), expected, 1e-12, 1e-12));
  EXPECT_NO_THROW(cuda_synchronize());
}
