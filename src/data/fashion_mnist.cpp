#include "anvil/data/fashion_mnist.h"

#include <algorithm>
#include <filesystem>

#include "anvil/core/error.h"
#include "anvil/data/idx.h"
#include "anvil/data/tensor_dataset.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/indexing.h"

namespace anvil::data {

IdxDataset::IdxDataset(const std::string& images_path, const std::string& labels_path,
                       IdxDatasetOptions options)
    : options_(options) {
  const char* op = "IdxDataset";
  ANVIL_CHECK(options.std > 0, ValueError, op, ": expected std > 0, got ", options.std);
  ANVIL_CHECK(options.num_classes == -1 || options.num_classes > 0, ValueError, op,
              ": expected num_classes > 0 or -1, got ", options.num_classes);
  Tensor images = read_idx(images_path);
  ANVIL_CHECK(images.dtype() == kUInt8 && (images.dim() == 3 || images.dim() == 4), IOError, op,
              ": '", images_path, "': expected uint8 images [N, H, W] or [N, C, H, W], got ",
              dtype_name(images.dtype()), " ", to_string(images.shape()));
  images_ = images.dim() == 3 ? images.unsqueeze(1) : images;
  Tensor labels = read_idx(labels_path);
  ANVIL_CHECK((labels.dtype() == kUInt8 || labels.dtype() == kInt32) && labels.dim() == 1, IOError,
              op, ": '", labels_path, "': expected uint8 or int32 labels [N], got ",
              dtype_name(labels.dtype()), " ", to_string(labels.shape()));
  ANVIL_CHECK(images_.size(0) == labels.size(0), ValueError, op, ": '", images_path, "' holds ",
              images_.size(0), " images but '", labels_path, "' holds ", labels.size(0), " labels");
  labels_ = labels.to(kInt64);
  const int64_t* l = labels_.data<int64_t>();
  int64_t max_label = -1;
  for (int64_t i = 0; i < labels_.numel(); ++i) {
    ANVIL_CHECK(
        l[i] >= 0 && (options.num_classes == -1 || l[i] < options.num_classes), ValueError, op,
        ": '", labels_path, "': label ", i, " is ", l[i], ", expected one in [0, ",
        options.num_classes == -1 ? std::string("inf") : std::to_string(options.num_classes), ")");
    max_label = std::max(max_label, l[i]);
  }
  num_classes_ = options.num_classes == -1 ? max_label + 1 : options.num_classes;
}

Tensor IdxDataset::convert(const Tensor& pixels) const {
  Tensor x = div(pixels.to(kFloat32), 255);  // torchvision: img.float().div(255)
  if (options_.mean != 0.0 || options_.std != 1.0) x = div(sub(x, options_.mean), options_.std);
  return x;
}

Example IdxDataset::get(int64_t index) const {
  ANVIL_CHECK(index >= 0 && index < size(), IndexError, "IdxDataset::get: index ", index,
              " is out of range for a dataset of ", size(), " samples");
  return {convert(images_.select(0, index)), labels_.select(0, index)};
}

Batch IdxDataset::get_batch(const std::vector<int64_t>& indices) const {
  Tensor idx = detail::index_tensor(indices, size(), "IdxDataset::get_batch");
  return {convert(index_select(images_, 0, idx)), index_select(labels_, 0, idx)};
}

namespace {
// <root>/<stem>.gz if it exists, else <root>/<stem>; IOError naming both if neither does.
std::string find_file(const std::string& op, const std::string& root, const std::string& stem) {
  namespace fs = std::filesystem;
  const fs::path gz = fs::path(root) / (stem + ".gz"), plain = fs::path(root) / stem;
  if (fs::exists(gz)) return gz.string();
  if (fs::exists(plain)) return plain.string();
  throw IOError(op + ": found neither '" + gz.string() + "' nor '" + plain.string() + "'");
}

IdxDatasetOptions with_classes(IdxDatasetOptions o) {
  if (o.num_classes == -1) o.num_classes = 10;
  return o;
}

// The images and labels files of the train or test split under `root`.
std::pair<std::string, std::string> split_files(const std::string& op, const std::string& root,
                                                bool train) {
  const std::string prefix = train ? "train" : "t10k";
  std::string images = find_file(op, root, prefix + "-images-idx3-ubyte");
  return {std::move(images), find_file(op, root, prefix + "-labels-idx1-ubyte")};
}
}  // namespace

const char* const FashionMNIST::kClasses[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                "Bag",         "Ankle boot"};

FashionMNIST::FashionMNIST(const std::string& root, bool train, IdxDatasetOptions options)
    : IdxDataset(split_files("FashionMNIST", root, train), with_classes(options)) {}

MNIST::MNIST(const std::string& root, bool train, IdxDatasetOptions options)
    : IdxDataset(split_files("MNIST", root, train), with_classes(options)) {}

}  // namespace anvil::data
