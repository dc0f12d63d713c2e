#include "support/module_oracle.h"

#include "support/oracle.h"

namespace anvil::test {
namespace {

std::string py_list(const std::vector<std::string>& items, bool quote) {
  std::string s = "[";
  for (const auto& i : items) s += (quote ? "'" + i + "'" : i) + ", ";
  return s + "]";
}

}  // namespace

::testing::AssertionResult module_matches_torch(nn::Module& m, const ModuleCase& c,
                                                const ModuleRun& run) {
  auto& oracle = TorchOracle::get();
  if (!oracle.available()) return ::testing::AssertionFailure() << oracle.why_unavailable();
  m.train(c.train);
  std::vector<bool> want = c.want_grad;
  if (want.empty())
    for (const Tensor& x : c.inputs) want.push_back(x.defined() && x.is_floating_point());

  // anvil
  std::vector<Tensor> leaves;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    Tensor x = c.inputs[i].detach().clone();
    if (want[i]) x.requires_grad_(true);
    leaves.push_back(x);
  }
  m.zero_grad();
  std::vector<Tensor> outs;
  for (Tensor& y : run(leaves))
    if (y.defined()) outs.push_back(y);
  std::vector<Tensor> gs;
  Tensor loss;
  for (size_t i = 0; i < outs.size(); ++i) {
    gs.push_back(uniform(outs[i].shape(), 7 + i, -1, 1, outs[i].dtype()));
    Tensor term = sum(mul(outs[i], gs.back()));
    loss = loss.defined() ? add(loss, term) : term;
  }
  const bool backward = loss.defined() && loss.requires_grad();
  if (backward) loss.backward();

  std::vector<std::pair<std::string, Tensor>> got;
  for (size_t i = 0; i < outs.size(); ++i) got.emplace_back("output " + std::to_string(i), outs[i]);
  std::vector<std::string> grad_inputs, pnames, keys, wants;
  if (backward) {
    for (size_t i = 0; i < leaves.size(); ++i) {
      if (!want[i]) continue;
      got.emplace_back("grad of input " + std::to_string(i), leaves[i].grad());
      grad_inputs.push_back(std::to_string(i));
    }
    for (auto& [n, p] : m.named_parameters()) {
      got.emplace_back(n + " grad", p.grad());
      pnames.push_back(n);
    }
  }

  // torch: inputs, then the output weights g, then the state dict
  std::vector<Tensor> sent = c.inputs;
  sent.insert(sent.end(), gs.begin(), gs.end());
  DType dt = kFloat32;
  for (auto& [k, v] : m.state_dict()) {
    keys.push_back(k);
    sent.push_back(v);
    if (v.is_floating_point()) dt = v.dtype();
  }
  for (bool w : want) wants.push_back(w ? "True" : "False");
  const size_t ni = c.inputs.size(), no = gs.size();
  const std::string code =
      "_T = [globals()[chr(97 + i)] for i in range(" + std::to_string(sent.size()) + ")]\n" +
      "_X, _G, _S = _T[:" + std::to_string(ni) + "], _T[" + std::to_string(ni) + ":" +
      std::to_string(ni + no) + "], _T[" + std::to_string(ni + no) + ":]\n" + "m = (" + c.ctor +
      ").to(torch." + dtype_name(dt) + ")\n" + "m.load_state_dict(dict(zip(" + py_list(keys, true) +
      ", _S)))\n" + "m.train(" + (c.train ? "True" : "False") + ")\n" +
      "x = [t.clone().requires_grad_(w) for t, w in zip(_X, " + py_list(wants, false) + ")]\n" +
      "y = (" + c.call + ")\n" +
      "y = [t for t in (list(y) if isinstance(y, (list, tuple)) else [y]) if t is not None]\n" +
      "out = list(y)\n" +
      (backward ? "sum((t * g).sum() for t, g in zip(y, _G)).backward()\n"
                  "P = dict(m.named_parameters())\n"
                  "z = lambda t, ref: t if t is not None else torch.zeros_like(ref)\n"
                  "out += [z(x[i].grad, x[i]) for i in " +
                      py_list(grad_inputs, false) +
                      "]\n"
                      "out += [z(P[n].grad, P[n]) for n in " +
                      py_list(pnames, true) + "]\n"
                : "");
  std::vector<Tensor> ref;
  try {
    ref = oracle.run_code(code, sent);
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "torch failed: " << e.what() << "\n" << code;
  }
  if (ref.size() != got.size())
    return ::testing::AssertionFailure() << "torch gave " << ref.size() << " tensors, anvil "
                                         << got.size() << " (" << outs.size() << " outputs)";
  for (size_t i = 0; i < got.size(); ++i) {
    const auto& [what, t] = got[i];
    if (!t.defined())
      return ::testing::AssertionFailure()
             << what << " of " << m.name() << " is undefined in anvil";
    if (t.dtype() != ref[i].dtype())
      return ::testing::AssertionFailure()
             << what << " of " << m.name() << ": dtype " << dtype_name(t.dtype()) << " vs torch's "
             << dtype_name(ref[i].dtype());
    auto r = all_close(t, ref[i], c.rtol, c.atol);
    if (!r) return r << " (" << what << " of " << m.name() << ", torch " << c.call << ")";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace anvil::test
