#include "anvil/nn/registry.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "anvil/nn/models/resnet.h"

namespace anvil::nn {
namespace {

using nlohmann::json;

// Checks that `args` holds only `known` keys, so a misspelt argument is not silently ignored.
void check_keys(const std::string& name, const json& args, const std::vector<std::string>& known) {
  for (const auto& item : args.items()) {
    const std::string& key = item.key();
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string list;
    for (const auto& k : known) {
      if (!list.empty()) list += ", ";
      list += k;
    }
    throw ValueError(detail::cat("make_module: \"", name, "\" takes the arguments {", list,
                                 "}, got an unknown argument \"", key, "\""));
  }
}

int64_t int_arg(const std::string& name, const json& args, const char* key, int64_t fallback) {
  if (!args.contains(key)) return fallback;
  const json& v = args.at(key);
  ANVIL_CHECK(v.is_number_integer(), ValueError, "make_module: \"", name, "\" expected \"", key,
              "\" to be an integer, got ", v.dump());
  return v.get<int64_t>();
}

ModulePtr make_resnet18(const json& args) {
  check_keys("resnet18", args, {"num_classes"});
  return std::make_shared<ResNet18>(int_arg("resnet18", args, "num_classes", 10));
}

struct Registry {
  std::mutex mutex;
  std::map<std::string, ModuleFactory> factories;
};

// Built on first use with anvil's own architectures, so they are there whatever the order of
// static initialisation and whether or not any object file with a registrar was linked in.
Registry& registry() {
  static Registry r{{}, {{"resnet18", make_resnet18}}};
  return r;
}

std::string known_names(const Registry& r) {
  std::string out;
  for (const auto& [name, f] : r.factories) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace

void register_module(const std::string& name, ModuleFactory factory) {
  ANVIL_CHECK(!name.empty(), ValueError, "register_module: expected a non-empty name");
  ANVIL_CHECK(factory != nullptr, ValueError, "register_module: \"", name,
              "\" expected a factory, got a null one");
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  ANVIL_CHECK(!r.factories.contains(name), ValueError, "register_module: \"", name,
              "\" is already registered");
  r.factories.emplace(name, std::move(factory));
}

ModulePtr make_module(const std::string& name, const nlohmann::json& args) {
  ModuleFactory factory;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    auto it = r.factories.find(name);
    ANVIL_CHECK(it != r.factories.end(), ValueError, "make_module: unknown module \"", name,
                "\"; registered modules: ", known_names(r));
    factory = it->second;  // called outside the lock: a factory may build registered modules
  }
  ANVIL_CHECK(args.is_object(), ValueError, "make_module: \"", name,
              "\" expected its arguments as a JSON object, got ", args.dump());
  ModulePtr m = factory(args);
  ANVIL_CHECK(m != nullptr, ValueError, "make_module: the factory of \"", name,
              "\" returned no module");
  return m;
}

std::vector<std::string> registered_modules() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, f] : r.factories) names.push_back(name);
  return names;
}

}  // namespace anvil::nn
