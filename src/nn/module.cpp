// Module: registration, traversal, modes, state dicts, placement and printing.
#include "anvil/nn/module.h"

#include <cxxabi.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <ostream>
#include <set>
#include <typeinfo>

#include "anvil/autograd/grad_mode.h"
#include "nn/repr.h"

namespace anvil::nn {

Tensor Module::forward(const Tensor&) {
  throw Error(name() + "::forward: this module has no forward(const Tensor&); override it");
}

// ---- registration ----

void Module::check_new_name(const std::string& name, const char* what) const {
  ANVIL_CHECK(!name.empty() && name.find('.') == std::string::npos, ValueError, this->name(),
              "::", what, ": expected a non-empty name without '.', got \"", name, "\"");
  auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
  };
  ANVIL_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), ValueError, this->name(),
              "::", what, ": the name \"", name, "\" is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_new_name(name, "register_parameter");
  if (t.defined()) {
    ANVIL_CHECK(t.is_floating_point(), DTypeError, this->name(),
                "::register_parameter: expected a floating-point tensor for \"", name, "\", got ",
                dtype_name(t.dtype()));
    ANVIL_CHECK(t.is_leaf(), AutogradError, this->name(), "::register_parameter: \"", name,
                "\" must be a leaf tensor (detach() it first)");
    t.requires_grad_(requires_grad);
  }
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name, "register_buffer");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, ModulePtr m) {
  check_new_name(name, "register_module");
  ANVIL_CHECK(m != nullptr, ValueError, this->name(), "::register_module: \"", name,
              "\" is a null module");
  ANVIL_CHECK(m.get() != this, ValueError, this->name(), "::register_module: \"", name,
              "\" is the module itself");
  children_.emplace_back(name, std::move(m));
}

// ---- traversal ----

void Module::collect(const std::string& prefix, bool recurse, bool params,
                     std::vector<std::pair<std::string, Tensor>>& out,
                     std::vector<const TensorImpl*>* seen) const {
  for (const auto& [n, t] : params ? params_ : buffers_) {
    if (!t.defined()) continue;
    if (seen) {
      if (std::find(seen->begin(), seen->end(), t.impl()) != seen->end()) continue;
      seen->push_back(t.impl());
    }
    out.emplace_back(prefix + n, t);
  }
  if (!recurse) return;
  for (const auto& [n, c] : children_) c->collect(prefix + n + ".", true, params, out, seen);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  std::vector<const TensorImpl*> seen;
  collect("", recurse, true, out, &seen);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  std::vector<const TensorImpl*> seen;
  collect("", recurse, false, out, &seen);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

std::vector<ModulePtr> Module::children() const {
  std::vector<ModulePtr> out;
  for (const auto& [n, c] : children_) out.push_back(c);
  return out;
}

std::vector<std::pair<std::string, ModulePtr>> Module::named_modules() {
  ModulePtr self = weak_from_this().lock();
  ANVIL_CHECK(self != nullptr, ValueError, name(),
              "::named_modules: the module must be owned by a std::shared_ptr "
              "(create it with std::make_shared)");
  std::vector<std::pair<std::string, ModulePtr>> out{{"", self}};
  std::set<const Module*> seen{this};
  std::function<void(const Module&, const std::string&)> walk = [&](const Module& m,
                                                                    const std::string& prefix) {
    for (const auto& [n, c] : m.children_) {
      if (!seen.insert(c.get()).second) continue;
      out.emplace_back(prefix + n, c);
      walk(*c, prefix + n + ".");
    }
  };
  walk(*this, "");
  return out;
}

std::vector<ModulePtr> Module::modules() {
  std::vector<ModulePtr> out;
  for (auto& [n, m] : named_modules()) out.push_back(m);
  return out;
}

void Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& [n, c] : children_) c->apply(fn);
  fn(*this);
}

// ---- mode and gradients ----

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.set_grad(Tensor());
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (const auto& t : parameters())
    if (!trainable_only || t.requires_grad()) n += t.numel();
  return n;
}

// ---- state ----

// Every name of every parameter and buffer: a tensor shared by two modules (tied weights)
// appears under both names, as in PyTorch's state dicts.
StateDict Module::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> all;
  collect("", true, true, all, nullptr);
  collect("", true, false, all, nullptr);
  StateDict out;
  for (auto& [n, t] : all) out.emplace(n, t.detach());
  return out;
}

void Module::load_state_dict(const StateDict& dict, bool strict) {
  std::vector<std::pair<std::string, Tensor>> all;
  collect("", true, true, all, nullptr);
  collect("", true, false, all, nullptr);
  StateDict own(all.begin(), all.end());

  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [n, t] : own) {
    auto it = dict.find(n);
    if (it == dict.end() || !it->second.defined()) {
      missing.push_back(n);
    } else if (it->second.shape() != t.shape()) {
      mismatched.push_back(detail::cat("\"", n, "\": expected shape ", to_string(t.shape()),
                                       ", got ", to_string(it->second.shape())));
    }
  }
  for (const auto& [n, t] : dict)
    if (!own.count(n)) unexpected.push_back(n);

  auto list = [](const std::vector<std::string>& keys, bool quote) {
    std::string s;
    for (const auto& k : keys) s += (s.empty() ? "" : ", ") + (quote ? "\"" + k + "\"" : k);
    return s;
  };
  std::string problems;
  if (!mismatched.empty()) problems += " size mismatch for " + list(mismatched, false) + ".";
  if (strict && !missing.empty()) problems += " Missing key(s): " + list(missing, true) + ".";
  if (strict && !unexpected.empty())
    problems += " Unexpected key(s): " + list(unexpected, true) + ".";
  const std::string head = name() + "::load_state_dict: error(s) in loading the state dict:";
  if (!mismatched.empty()) throw ShapeError(head + problems);
  if (!problems.empty()) throw ValueError(head + problems);

  NoGradGuard no_grad;
  for (auto& [n, t] : own) {
    auto it = dict.find(n);
    if (it != dict.end() && it->second.defined()) t.copy_(it->second);
  }
}

// ---- placement ----

void Module::apply_to_tensors(const std::function<Tensor(const Tensor&)>& fn) {
  NoGradGuard no_grad;
  std::vector<const TensorImpl*> done;
  auto convert = [&](Tensor& t) {
    if (!t.defined() || std::find(done.begin(), done.end(), t.impl()) != done.end()) return;
    done.push_back(t.impl());
    Tensor grad = t.grad();
    t.set_data(fn(t));
    if (grad.defined()) t.set_grad(fn(grad));
  };
  std::function<void(Module&)> walk = [&](Module& m) {
    for (auto& [n, t] : m.params_) convert(t);
    for (auto& [n, t] : m.buffers_) convert(t);
  };
  apply(walk);
}

Module& Module::to(Device device) {
  apply_to_tensors([&](const Tensor& t) { return t.to(device); });
  return *this;
}

Module& Module::to(DType dtype) {
  ANVIL_CHECK(is_floating(dtype), DTypeError, name(),
              "::to: expected a floating-point dtype for the parameters, got ", dtype_name(dtype));
  apply_to_tensors([&](const Tensor& t) { return t.is_floating_point() ? t.to(dtype) : t; });
  return *this;
}

// ---- printing ----

std::string Module::name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  char* raw = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string full = status == 0 && raw ? raw : mangled;
  std::free(raw);
  // Drop namespaces ("anvil::nn::Linear" -> "Linear"), but not those inside template arguments.
  const size_t angle = full.find('<');
  const size_t colon = full.rfind("::", angle == std::string::npos ? std::string::npos : angle);
  return colon == std::string::npos ? full : full.substr(colon + 2);
}

std::string Module::str() const {
  std::vector<std::string> lines;
  const std::string extra = extra_repr();
  size_t start = 0;
  while (!extra.empty() && start <= extra.size()) {
    size_t end = extra.find('\n', start);
    if (end == std::string::npos) end = extra.size();
    lines.push_back(extra.substr(start, end - start));
    start = end + 1;
  }
  const size_t n_extra = lines.size();
  for (const auto& [n, c] : children_) {
    std::string child = c->str(), indented;
    for (char ch : child) {
      indented += ch;
      if (ch == '\n') indented += "  ";
    }
    lines.push_back("(" + n + "): " + indented);
  }
  std::string out = name() + "(";
  if (n_extra == 1 && children_.empty()) {
    out += lines[0];
  } else if (!lines.empty()) {
    for (const auto& l : lines) out += "\n  " + l;
    out += "\n";
  }
  return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Module& m) { return os << m.str(); }

namespace detail {

std::string repr(bool v) { return v ? "true" : "false"; }

std::string repr(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  std::string s(buf, ec == std::errc() ? end : buf);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";  // 1 -> 1.0; keeps inf, nan, 1e-05
  return s;
}

std::string repr(Pair p) { return cat("(", p[0], ", ", p[1], ")"); }

}  // namespace detail
}  // namespace anvil::nn
