// Losses computed by fused, numerically stable kernels.
#pragma once
#include <string>

#include "anvil/core/tensor.h"

namespace anvil {

enum class Reduction { None, Mean, Sum };
// "none", "mean" or "sum"; throws ValueError otherwise.
Reduction reduction_from_string(const std::string& s);

// Cross-entropy from logits [N, C] (or [C]) against int64/int32 class indices [N], as
// torch.nn.functional.cross_entropy: log-softmax and NLL in one pass; optional class
// weights [C]; targets equal to ignore_index count for nothing; label_smoothing in [0, 1).
// Mean reduction divides by the sum of the weights of the counted targets.
// Throws IndexError for a target outside [0, C) other than ignore_index.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight = Tensor(),
                     Reduction reduction = Reduction::Mean, int64_t ignore_index = -100,
                     double label_smoothing = 0.0);

}  // namespace anvil
