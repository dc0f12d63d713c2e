#include "anvil/autograd/checkpoint.h"

#include "anvil/amp/autocast.h"
#include "anvil/autograd/grad_mode.h"
#include "anvil/autograd/node.h"
#include "anvil/core/generator.h"

namespace anvil::autograd {

Tensor checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs,
                  const std::vector<Tensor>& params) {
  std::vector<Tensor> all = inputs;
  all.insert(all.end(), params.begin(), params.end());
  if (!needs_grad(all)) return fn(inputs);
  ANVIL_CHECK(!inputs.empty() && inputs[0].defined(), ValueError,
              "checkpoint: expected at least one defined input");
  Generator& gen = default_generator(inputs[0].device());
  const uint64_t start = gen.next_block();
  // The recomputation runs in the backward, after any autocast region has closed: it gets the
  // forward's autocast state back, or it would recompute other values (as torch's checkpoint).
  const DeviceKind kind = inputs[0].device().kind;
  const bool cast = amp::is_autocast_enabled(kind);
  const DType cast_dtype = amp::autocast_dtype(kind);
  Tensor out;
  {
    NoGradGuard no_grad;
    out = fn(inputs);
  }
  ANVIL_CHECK(out.defined(), ValueError, "checkpoint: the function returned an undefined tensor");
  const size_t n_inputs = inputs.size();
  std::vector<Tensor> saved_inputs;
  for (const Tensor& x : inputs) saved_inputs.push_back(x.defined() ? x.detach() : Tensor());
  return record(
      "CheckpointBackward", out, all,
      [fn, saved_inputs, params, n_inputs, start, &gen, kind, cast, cast_dtype](const Tensor& g) {
        // The forward again, from the same inputs and the same random stream.
        std::vector<Tensor> xs, wrt;
        std::vector<size_t> slot;  // where each of wrt's gradients goes
        for (size_t i = 0; i < n_inputs; ++i) {
          Tensor x = saved_inputs[i];
          if (x.defined() && x.is_floating_point()) {
            x = x.detach().requires_grad_();
            wrt.push_back(x);
            slot.push_back(i);
          }
          xs.push_back(x);
        }
        for (size_t i = 0; i < params.size(); ++i)
          if (params[i].defined() && params[i].requires_grad()) {
            wrt.push_back(params[i]);
            slot.push_back(n_inputs + i);
          }
        const uint64_t now = gen.next_block();
        gen.set_next_block(start);
        Tensor y;
        {
          EnableGradGuard enable;
          amp::autocast region(kind, cast_dtype, cast);
          y = fn(xs);
        }
        gen.set_next_block(now);
        std::vector<Tensor> grads(n_inputs + params.size());
        if (!y.requires_grad()) return grads;
        std::vector<Tensor> got = grad({y}, wrt, {g});
        for (size_t k = 0; k < got.size(); ++k) grads[slot[k]] = got[k];
        return grads;
      });
}

}  // namespace anvil::autograd
