// The module registry: architectures by name, each built by a factory from a JSON object of
// arguments, so a model can be named in a file ("resnet18", {"num_classes": 10}) and rebuilt
// without the code that defined it (io::save_model / io::load_model store that pair).
//
//   auto net = nn::make_module("resnet18", {{"num_classes", 100}});
//
// anvil's own architectures ("resnet18") are registered on the registry's first use. Register
// your own once before use, with a call or a static registrar:
//
//   nn::register_module("mlp3", [](const nlohmann::json& args) -> nn::ModulePtr {
//     return std::make_shared<MyMlp>(args.value("hidden", 128));
//   });
//   static nn::ModuleRegistrar reg("mlp3", factory);   // at namespace scope
//
// (Inside a Module subclass, unqualified register_module means Module::register_module, the
// child registration; write nn::register_module there.) The registry is thread-safe.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "anvil/nn/module.h"

namespace anvil::nn {

// Builds a fresh module from its arguments (a JSON object, {} when none). A factory should
// throw ValueError for an argument it does not know or cannot take.
using ModuleFactory = std::function<ModulePtr(const nlohmann::json& args)>;

// Adds `factory` under `name`. Throws ValueError for an empty name, a null factory or a name
// already registered.
void register_module(const std::string& name, ModuleFactory factory);

// A fresh module of the registered architecture `name` built with `args` (a JSON object).
// Throws ValueError naming `name` and listing the registered ones when it is unknown, when
// args is not an object, or when the factory returns null; the factory's own errors pass
// through.
ModulePtr make_module(const std::string& name,
                      const nlohmann::json& args = nlohmann::json::object());

// The registered names, sorted.
std::vector<std::string> registered_modules();

// Registers at static-initialisation time: `static nn::ModuleRegistrar r("name", factory);`.
struct ModuleRegistrar {
  ModuleRegistrar(const std::string& name, ModuleFactory factory) {
    register_module(name, std::move(factory));
  }
};

}  // namespace anvil::nn
