#include "support/oracle.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace anvil::test {
namespace {
using json = nlohmann::json;

json meta_of(const Tensor& t) { return {{"dtype", dtype_name(t.dtype())}, {"shape", t.shape()}}; }

void write_tensor(FILE* f, const Tensor& t) {
  Tensor c = t.detach().cpu().contiguous();
  size_t n = size_t(c.numel()) * c.element_size();
  if (n && fwrite(c.data_ptr(), 1, n, f) != n) throw Error("torch oracle: write failed");
}

Tensor read_tensor(FILE* f, const json& m) {
  Shape shape = m["shape"].get<Shape>();
  Tensor t = empty(shape, dtype_from_string(m["dtype"].get<std::string>()));
  size_t n = size_t(t.numel()) * t.element_size();
  if (n && fread(t.data_ptr(), 1, n, f) != n) throw Error("torch oracle: short read");
  return t;
}
}  // namespace

TorchOracle& TorchOracle::get() {
  static TorchOracle oracle;
  return oracle;
}

TorchOracle::TorchOracle() {
  const char* py = std::getenv("ANVIL_PYTHON");
  if (!py || !*py) {
    why_ = "ANVIL_PYTHON is not set: run the tests through `make test`, which creates the "
           "reference environment (torch, numpy) and points ANVIL_PYTHON at it";
    return;
  }
  int to_child[2], from_child[2];
  if (pipe(to_child) || pipe(from_child)) {
    why_ = "pipe() failed";
    return;
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    close(to_child[1]);
    close(from_child[0]);
    // The oracle must not inherit sanitizer preloads or our thread settings.
    unsetenv("LD_PRELOAD");
    execl(py, py, ANVIL_TEST_ORACLE, static_cast<char*>(nullptr));
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  pid_ = pid;
  in_ = fdopen(to_child[1], "wb");
  out_ = fdopen(from_child[0], "rb");
  signal(SIGPIPE, SIG_IGN);
}

TorchOracle::~TorchOracle() {
  if (in_) fclose(in_);
  if (out_) fclose(out_);
  if (pid_ > 0) waitpid(pid_, nullptr, 0);
}

namespace {
json send(FILE* in, FILE* out, json req, const std::vector<Tensor>& inputs, const Tensor& grad_out,
          const std::string& what) {
  req["inputs"] = json::array();
  for (const Tensor& t : inputs) req["inputs"].push_back(meta_of(t));
  req["grad_out"] = grad_out.defined() ? meta_of(grad_out) : json(nullptr);
  std::string line = req.dump() + "\n";
  fwrite(line.data(), 1, line.size(), in);
  for (const Tensor& t : inputs) write_tensor(in, t);
  if (grad_out.defined()) write_tensor(in, grad_out);
  if (fflush(in) != 0)
    throw Error("torch oracle: the Python process is gone (could not import torch?)");
  std::string resp_line;
  for (int c; (c = fgetc(out)) != EOF && c != '\n';) resp_line.push_back(char(c));
  if (resp_line.empty()) throw Error("torch oracle: no response (did the Python process die?)");
  json resp = json::parse(resp_line);
  if (!resp["ok"].get<bool>())
    throw Error("torch oracle: `" + what + "` failed: " + resp["error"].get<std::string>());
  return resp;
}
}  // namespace

std::vector<Tensor> TorchOracle::run_code(const std::string& code,
                                          const std::vector<Tensor>& inputs) {
  if (!available()) throw Error("torch oracle unavailable: " + why_);
  json req;
  req["code"] = code;
  json resp = send(in_, out_, req, inputs, Tensor(), code);
  std::vector<Tensor> outs;
  for (const auto& m : resp["outs"]) outs.push_back(read_tensor(out_, m));
  return outs;
}

TorchResult TorchOracle::run(const std::string& expr, const std::vector<Tensor>& inputs,
                             const Tensor& grad_out, const std::vector<bool>& want_grad) {
  if (!available()) throw Error("torch oracle unavailable: " + why_);
  json req;
  req["expr"] = expr;
  req["grad"] = want_grad;
  json resp = send(in_, out_, req, inputs, grad_out, expr);
  TorchResult r;
  r.out = read_tensor(out_, resp["out"]);
  r.requires_grad = resp.value("requires_grad", false);
  for (const auto& g : resp["grads"])
    r.grads.push_back(g.is_null() ? Tensor() : read_tensor(out_, g));
  return r;
}


}  // namespace anvil::test
