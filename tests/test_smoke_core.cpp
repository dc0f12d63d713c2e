#include "support/check.h"
using namespace anvil;
TEST(Smoke, AddBackward) {
  Tensor a = tensor(std::vector<float>{1, 2, 3}).requires_grad_();
  Tensor b = tensor(std::vector<float>{4, 5, 6}, {3});
  Tensor c = sum(mul(add(a, b), b));
  c.backward();
  EXPECT_TRUE(test::all_close(a.grad(), b));
}
TEST(Smoke, Torch) {
  Tensor a = test::uniform({4, 3}, 1).t(), b = test::uniform({3, 1}, 2);
  EXPECT_TRUE(test::matches_torch("a * b + a", {a, b}, [](auto& x) { return add(mul(x[0], x[1]), x[0]); }));
  EXPECT_TRUE(test::gradcheck([](auto& x) { return div(mul(x[0], x[1]), x[1] + 3.0); }, {a.requires_grad_(), b.requires_grad_()}));
  std::cout << a << "\n" << sum(a, {1}) << std::endl;
}
