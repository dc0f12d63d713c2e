// Image-classification datasets stored as a pair of IDX files (MNIST, Fashion-MNIST, KMNIST,
// EMNIST): IdxDataset for any such pair, FashionMNIST and MNIST for the usual file names.
//
// Images are kept in memory as uint8 and converted per batch, as torchvision's ToTensor and
// Normalize do: input = (pixel / 255 - mean) / std, float32 [1, H, W] per sample
// ([B, 1, H, W] per batch); targets are int64 class indices, [] per sample, [B] per batch.
#pragma once
#include <string>
#include <utility>

#include "anvil/data/dataset.h"

namespace anvil::data {

struct IdxDatasetOptions {
  // Normalisation after scaling to [0, 1] (torchvision's Normalize((mean,), (std,))). The
  // defaults leave pixels in [0, 1]; Fashion-MNIST's usual values are 0.2860 and 0.3530.
  double mean = 0.0;
  double std = 1.0;
  // Labels must lie in [0, num_classes); -1 only checks they are non-negative.
  int64_t num_classes = -1;
};

class IdxDataset : public Dataset {
 public:
  // images: an IDX file of uint8 [N, H, W] (or [N, C, H, W]); labels: uint8 (or int32) [N].
  // Throws IOError for a file that cannot be read (see read_idx) or that holds the wrong
  // dtype or rank, ValueError if the image and label counts differ, a label lies outside
  // [0, num_classes), or std <= 0.
  IdxDataset(const std::string& images_path, const std::string& labels_path,
             IdxDatasetOptions options = {});
  int64_t size() const override { return images_.size(0); }
  Example get(int64_t index) const override;
  Batch get_batch(const std::vector<int64_t>& indices) const override;

  // The raw data: uint8 [N, C, H, W] and int64 [N].
  const Tensor& images() const { return images_; }
  const Tensor& labels() const { return labels_; }
  // num_classes from the options, or max label + 1 when it was -1.
  int64_t num_classes() const { return num_classes_; }

 protected:
  // From (images_path, labels_path).
  IdxDataset(const std::pair<std::string, std::string>& files, IdxDatasetOptions options)
      : IdxDataset(files.first, files.second, options) {}

 private:
  Tensor convert(const Tensor& pixels) const;  // uint8 -> normalised float32
  Tensor images_, labels_;
  IdxDatasetOptions options_;
  int64_t num_classes_ = 0;
};

// Fashion-MNIST (Zalando): 28x28 grey images of 10 kinds of clothing, 60000 for training and
// 10000 for testing, read from <root>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (the
// .gz name is tried first). Errors as IdxDataset, IOError if neither name exists.
class FashionMNIST : public IdxDataset {
 public:
  static constexpr const char* kDefaultRoot = "/usr/share/datasets/fashion-mnist";
  // Class names, in label order.
  static const char* const kClasses[10];
  explicit FashionMNIST(const std::string& root = kDefaultRoot, bool train = true,
                        IdxDatasetOptions options = {});
};

// MNIST handwritten digits: the same file names and layout as FashionMNIST.
class MNIST : public IdxDataset {
 public:
  explicit MNIST(const std::string& root, bool train = true, IdxDatasetOptions options = {});
};

}  // namespace anvil::data
