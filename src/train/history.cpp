#include "anvil/train/history.h"

#include <cmath>
#include <iomanip>
#include <set>
#include <sstream>

#include "anvil/core/file.h"

namespace anvil::train {

std::vector<double> History::series(const std::string& key) const {
  std::vector<double> v;
  for (const auto& e : epochs_) {
    auto it = e.values.find(key);
    v.push_back(it == e.values.end() ? std::nan("") : it->second);
  }
  return v;
}

std::optional<double> History::last(const std::string& key) const {
  if (epochs_.empty()) return std::nullopt;
  auto it = epochs_.back().values.find(key);
  if (it == epochs_.back().values.end()) return std::nullopt;
  return it->second;
}

std::string History::to_csv() const {
  std::set<std::string> keys;
  for (const auto& e : epochs_)
    for (const auto& [k, v] : e.values) keys.insert(k);
  std::ostringstream os;
  os << "epoch";
  for (const auto& k : keys) os << ',' << k;
  os << '\n' << std::setprecision(10);
  for (const auto& e : epochs_) {
    os << e.epoch;
    for (const auto& k : keys) {
      os << ',';
      auto it = e.values.find(k);
      if (it != e.values.end()) os << it->second;
    }
    os << '\n';
  }
  return os.str();
}

nlohmann::json History::to_json() const {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& e : epochs_) {
    nlohmann::json row = {{"epoch", e.epoch}};
    for (const auto& [k, v] : e.values) row[k] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
    j.push_back(row);
  }
  return j;
}

void History::write_csv(const std::string& path) const { write_file_atomic(path, to_csv()); }
void History::write_json(const std::string& path) const {
  write_file_atomic(path, to_json().dump(2) + "\n");
}

}  // namespace anvil::train
