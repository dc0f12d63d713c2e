// Batch normalisation layers, as torch.nn.BatchNorm1d / BatchNorm2d.
//
// In training mode each batch is normalised by its own statistics (biased variance) and,
// with track_running_stats, the running statistics move towards them:
//   running = (1 - momentum) * running + momentum * batch   (unbiased variance for the var)
// with momentum = 1 / num_batches_tracked when momentum is unset (a cumulative average).
// In eval mode the running statistics normalise (the batch's when there are none).
#pragma once
#include <optional>

#include "anvil/nn/module.h"

namespace anvil::nn {

class BatchNorm : public Module {
 public:
  // Parameters weight (ones) and bias (zeros), [num_features], when affine; buffers
  // running_mean (zeros), running_var (ones) [num_features] and num_batches_tracked (int64
  // scalar 0) when track_running_stats. Throws ValueError for num_features < 1, eps < 0 or a
  // momentum outside [0, 1].
  BatchNorm(int64_t num_features, double eps, std::optional<double> momentum, bool affine,
            bool track_running_stats);
  Tensor forward(const Tensor& x) override;
  // relu(forward(x) + residual) (residual optional), through ops::batch_norm_relu: one fused
  // kernel where the backend has one (ResNet blocks on CUDA, channels-last, 16-bit).
  Tensor forward_relu(const Tensor& x, const Tensor& residual = Tensor());
  // Running statistics back to zeros / ones and num_batches_tracked to 0.
  void reset_running_stats();
  // reset_running_stats() and weight = 1, bias = 0.
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t num_features;
  double eps;
  std::optional<double> momentum;
  bool affine, track_running_stats;
  Tensor weight, bias;                                    // undefined unless affine
  Tensor running_mean, running_var, num_batches_tracked;  // undefined unless tracked

 protected:
  // Throws ShapeError unless x's rank suits the layer.
  virtual void check_input(const Tensor& x) const = 0;

 private:
  Tensor forward_relu_impl(const Tensor& x, const Tensor& residual, bool relu);
};

// Over [N, C] or [N, C, L] input (statistics per C).
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, double eps = 1e-5,
                       std::optional<double> momentum = 0.1, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm(num_features, eps, momentum, affine, track_running_stats) {}

 protected:
  void check_input(const Tensor& x) const override;
};

// Over [N, C, H, W] input (statistics per C).
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5,
                       std::optional<double> momentum = 0.1, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm(num_features, eps, momentum, affine, track_running_stats) {}

 protected:
  void check_input(const Tensor& x) const override;
};

}  // namespace anvil::nn
