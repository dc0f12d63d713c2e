// A dense layer and its activation as one op: act(x @ w^T + b). On CUDA the bias and the
// activation run in the matrix product's epilogue (cuBLASLt), and the bias gradient comes out
// of the weight-gradient product, so a Linear+ReLU layer costs one kernel forward instead of
// three. Values are those of linear() followed by relu() / gelu(x, "tanh").
#pragma once
#include "anvil/core/tensor.h"

namespace anvil {

enum class Activation {
  None,      // identity: linear_act(x, w, b) is linear(x, w, b)
  Relu,      // relu
  GeluTanh,  // gelu(x, "tanh"), the tanh approximation cuBLASLt's GELU epilogue computes
};

// act(x @ w^T + b) with x [..., in], w [out, in], b [out] (optional) -> [..., out]; recorded
// for autograd as one node. Under autocast it casts x, w and b as linear() does. Throws
// ShapeError / DTypeError as linear() does; integer inputs go through linear() and the
// activation's op.
Tensor linear_act(const Tensor& x, const Tensor& w, const Tensor& b = Tensor(),
                  Activation act = Activation::None);

}  // namespace anvil
