// The CUDA sweep of the random ops against the CPU, every op x every dtype (see
// support/sweep.h). anvil/core/generator.h promises that a seed gives the same numbers on
// every backend (Philox counters, element i at block offset + i / 4, lane i % 4), and
// anvil/ops/dropout.h that dropout drops the same elements: so uniform draws, integer draws and
// dropout masks must match bit for bit, two draws in a row included (the generators' offsets
// advance alike). Normal draws go through log and sin/cos, whose CUDA and glibc versions may
// differ in the last bit of a double: element-wise tolerance. Skipped without a GPU.
#include <cstdint>
#include <functional>

#include "support/sweep.h"

using namespace anvil;
using namespace anvil::test::sweep;

namespace {

// 4099 elements: not a whole number of Philox blocks, of either 4 or 2 values.
const Shape kShape = {4099};
// A transposed (non-contiguous) destination for the in-place draws.
const Shape kTransposed = {111, 37};

// Two draws in a row from a fresh generator (the same seed on both devices).
Case drawn(const char* op, std::vector<DType> dtypes, Precision precision,
           std::function<Tensor(const TensorOptions&, Generator&)> draw) {
  return {.op = op,
          .dtypes = std::move(dtypes),
          .body = [draw](const Args& a) -> Tensors {
            Generator gen(1234);
            Tensor first = draw(a.options(), gen);
            return {first, draw(a.options(), gen)};
          },
          .precision = precision};
}

std::vector<Case> random_cases() {
  const auto exact = Precision::Exact;
  const int64_t wide = int64_t(1) << 40;
  return {
      drawn("rand", kFloats, exact,
            [](const TensorOptions& o, Generator& g) { return rand(kShape, o, &g); }),
      drawn("randn", kFloats, Precision::Elementwise,
            [](const TensorOptions& o, Generator& g) { return randn(kShape, o, &g); }),
      // Every numeric dtype holds integer draws (uint8 wraps the negative ones alike).
      drawn("randint", kNumeric, exact,
            [](const TensorOptions& o, Generator& g) { return randint(-7, 200, kShape, o, &g); }),
      // A range wider than 2^32 takes two lanes per element.
      {.op = "randint_wide",
       .dtypes = {kInt64},
       .others_refused = false,
       .body = [wide](const Args& a) -> Tensors {
         Generator gen(5);
         return {randint(-wide, wide, kShape, a.options(), &gen)};
       },
       .precision = exact},
      drawn("uniform_transposed", kFloats, exact,
            [](const TensorOptions& o, Generator& g) {
              Tensor t = Tensor::empty(kTransposed, o).t();
              uniform_(t, -3, 2, &g);
              return t;
            }),
      drawn("normal_transposed", kFloats, Precision::Elementwise,
            [](const TensorOptions& o, Generator& g) {
              Tensor t = Tensor::empty(kTransposed, o).t();
              normal_(t, 1, 2, &g);
              return t;
            }),
      // The same elements dropped, the rest scaled alike; so is the gradient.
      {.op = "dropout",
       .dtypes = kFloats,
       .inputs = [](DType dt) { return Tensors{values({37, 111}, 1, dt, {-2, 2})}; },
       .body = [](const Args& a) -> Tensors {
         Generator gen(77);
         return {dropout(a.in[0], 0.3, true, &gen)};
       },
       .precision = exact,
       .grads = {0}},
  };
}

class CudaSweepRandom : public ::testing::TestWithParam<Param> {};

TEST_P(CudaSweepRandom, CpuReference) { check_reference(GetParam()); }
TEST_P(CudaSweepRandom, MatchesCpu) { check(GetParam()); }

INSTANTIATE_TEST_SUITE_P(, CudaSweepRandom, ::testing::ValuesIn(params(random_cases())), name);

}  // namespace
