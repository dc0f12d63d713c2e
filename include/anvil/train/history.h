// The per-epoch record of a training run: loss, metrics, learning rate, time.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace anvil::train {

// Named numbers of one epoch: "loss", "accuracy", "val_loss", "val_accuracy", "lr",
// "time_s", "samples_per_s", ...
using Logs = std::map<std::string, double>;

struct EpochRecord {
  int64_t epoch = 0;  // 1-based
  Logs values;
};

class History {
 public:
  void add(int64_t epoch, Logs values) { epochs_.push_back({epoch, std::move(values)}); }
  const std::vector<EpochRecord>& epochs() const { return epochs_; }
  bool empty() const { return epochs_.empty(); }
  // The value of `key` at every epoch (NaN where an epoch lacks it).
  std::vector<double> series(const std::string& key) const;
  // The last epoch's value of `key`, if any.
  std::optional<double> last(const std::string& key) const;

  // CSV: a header "epoch,<keys...>" (keys sorted) and one row per epoch.
  std::string to_csv() const;
  nlohmann::json to_json() const;
  // Written atomically (temporary file + rename). Throws IOError naming the file.
  void write_csv(const std::string& path) const;
  void write_json(const std::string& path) const;

 private:
  std::vector<EpochRecord> epochs_;
};

}  // namespace anvil::train
