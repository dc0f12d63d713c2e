// Loss functions as torch.nn.functional defines them, composed from the element-wise,
// reduction and indexing ops (so they run wherever those do and differentiate through
// autograd). The fused index-target cross_entropy lives in anvil/ops/loss.h; this file adds
// the rest of the family and shares its `Reduction`.
//
// Every loss takes `reduction`: None keeps one loss per element (per sample for the
// class-indexed losses), Sum adds them up, Mean averages them (see each loss for what it
// divides by). Unless noted, `input` and `target` must have the same shape: unlike PyTorch,
// which broadcasts with a warning, a mismatch such as [N, 1] against [N] throws ShapeError,
// because it is nearly always a bug. Inputs must be floating-point (DTypeError otherwise)
// and on one device (DeviceError).
#pragma once
#include "anvil/core/tensor.h"
#include "anvil/ops/loss.h"

namespace anvil {

// Negative log-likelihood of class indices under log-probabilities, as F.nll_loss.
//   input:  log-probabilities [N, C], [C] or [N, C, d1, ...]
//   target: int64/int32 class indices, input's shape without the class dim
//   weight: optional per-class weights [C] (not differentiated, as in PyTorch)
// Targets equal to ignore_index count for nothing. Mean divides by the summed weights of the
// counted targets (their count without weights); nan when every target is ignored.
// Throws IndexError for a target outside [0, C) other than ignore_index (this check reads
// the targets' range back to the host).
Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                Reduction reduction = Reduction::Mean, int64_t ignore_index = -100);

// Binary cross-entropy of probabilities, as F.binary_cross_entropy:
//   loss = -weight * (t * log(p) + (1 - t) * log(1 - p)), each log clamped at -100.
// input and target have the same shape; weight (optional) broadcasts to it. Mean divides by
// the element count. The gradient is PyTorch's, w * (p - t) / max(p (1 - p), 1e-12), so
// saturated probabilities (exactly 0 or 1) give finite gradients.
// Throws ValueError for an input outside [0, 1] (read back to the host; NaN passes and
// gives a NaN loss). Targets outside [0, 1] are allowed here, as in PyTorch; the
// nn::BinaryCrossEntropy module rejects them.
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target,
                            const Tensor& weight = Tensor(), Reduction reduction = Reduction::Mean);

// Binary cross-entropy from logits, as F.binary_cross_entropy_with_logits, in the stable form
//   loss = weight * ((1 - t) * x + (1 + (pos_weight - 1) * t) * (log(1 + exp(-|x|)) + max(-x, 0))).
// weight broadcasts to the input; pos_weight (weight of the positive term, typically one per
// class [C]) broadcasts along the last dim. Mean divides by the element count.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight = Tensor(),
                                        Reduction reduction = Reduction::Mean,
                                        const Tensor& pos_weight = Tensor());

// Squared error (x - t)^2, as F.mse_loss.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// Absolute error |x - t|, as F.l1_loss (a.k.a. mean absolute error); gradient 0 where x == t.
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// Huber loss, as F.huber_loss: 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), with
// d = x - t. Throws ValueError unless delta > 0.
Tensor huber_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
                  double delta = 1.0);
// Smooth L1 loss, as F.smooth_l1_loss: huber_loss / beta (l1_loss when beta == 0).
// Throws ValueError for beta < 0.
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target,
                      Reduction reduction = Reduction::Mean, double beta = 1.0);

// Cross-entropy from logits against class probabilities (one-hot or soft labels), as
// F.cross_entropy with a floating-point target:
//   loss_n = -sum_c weight_c * t'_nc * log_softmax(x)_nc,   t' = (1 - e) t + e / C.
//   logits: [N, C], [C] or [N, C, d1, ...]; target: floating, the same shape
//   weight: optional per-class weights [C] (not differentiated)
// Mean divides by the number of samples (N * d1 * ...), not by the weights, as PyTorch does.
// Rows of `target` need not sum to 1 (they are used as given). Throws ValueError unless
// label_smoothing is in [0, 1].
Tensor soft_cross_entropy(const Tensor& logits, const Tensor& target,
                          const Tensor& weight = Tensor(), Reduction reduction = Reduction::Mean,
                          double label_smoothing = 0.0);

}  // namespace anvil
