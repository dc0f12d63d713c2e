// MultiheadAttention, the Transformer layers and a whole Transformer on CUDA against the CPU
// with the same weights, from poisoned memory: outputs, input and parameter gradients in
// float32 (masks of every kind, both layouts, both normalisation orders), and loosely under
// bfloat16 autocast (where self-attention without masks takes the fused kernel). Skipped
// without a GPU.
#include <functional>
#include <string>
#include <vector>

#include "anvil/amp/autocast.h"
#include "anvil/nn/nn.h"
#include "support/cuda_check.h"

using namespace anvil;

namespace {

using test::Tol;

class CudaTransformer : public test::CudaTest {};

Tensor rnd(const Shape& shape, uint64_t seed) {
  return test::uniform(shape, seed, -1, 1, kFloat32);
}

Tensor padding_mask(int64_t n, int64_t s, const std::vector<int64_t>& pad) {
  std::vector<uint8_t> v;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < s; ++j) v.push_back(j >= s - pad[size_t(i)]);
  return ne(tensor(v, {n, s}, kUInt8), 0);
}

struct Outcome {
  std::vector<Tensor> outs, input_grads;
  std::vector<std::pair<std::string, Tensor>> param_grads;
};

using Call = std::function<std::vector<Tensor>(nn::Module& m, const std::vector<Tensor>& x)>;

// `m` on `device` run on leaves made from `inputs` (the first n_grad require grad; the rest
// are masks), then backward of sum_i sum(out_i * g_i) for fixed g_i. Memory is poisoned
// before the forward and the backward on CUDA; with `autocast` the forward runs under CUDA
// bfloat16 autocast.
Outcome run(nn::Module& m, const Call& call, const std::vector<Tensor>& inputs, size_t n_grad,
            Device device, bool autocast = false) {
  std::vector<Tensor> leaves;
  for (size_t i = 0; i < inputs.size(); ++i) {
    leaves.push_back(inputs[i].to(device).detach());
    if (i < n_grad) leaves.back().requires_grad_();
  }
  m.zero_grad();
  if (device.is_cuda()) test::poison_device_cache();
  Outcome r;
  {
    amp::autocast ac(DeviceKind::CUDA, kBFloat16, autocast);
    r.outs = call(m, leaves);
  }
  Tensor loss;
  for (size_t i = 0; i < r.outs.size(); ++i) {
    Tensor g = test::uniform(r.outs[i].shape(), 50 + i, -1, 1).to(r.outs[i].dtype()).to(device);
    Tensor term = sum(mul(r.outs[i].to(kFloat32), g.to(kFloat32)));
    loss = loss.defined() ? add(loss, term) : term;
  }
  if (device.is_cuda()) test::poison_device_cache();
  loss.backward();
  for (size_t i = 0; i < n_grad; ++i) r.input_grads.push_back(leaves[i].grad());
  r.param_grads = m.named_parameters();
  for (auto& [n, p] : r.param_grads) p = p.grad();
  return r;
}

// The module made by `make` on the CPU and a copy on CUDA with the same state, compared: in
// float32 within `tol`; under autocast (`loose` > 0) within loose * (|cpu| + max |cpu|).
::testing::AssertionResult same_on_cuda(const std::function<nn::ModulePtr()>& make,
                                        const Call& call, const std::vector<Tensor>& inputs,
                                        size_t n_grad, bool train, Tol tol, double loose = 0) {
  try {
    nn::ModulePtr cpu = make(), gpu = make();
    gpu->load_state_dict(cpu->state_dict());
    gpu->to(kCUDA);
    cpu->train(train);
    gpu->train(train);
    Outcome want = run(*cpu, call, inputs, n_grad, kCPU);
    Outcome got = run(*gpu, call, inputs, n_grad, kCUDA, loose > 0);
    auto compare = [&](const Tensor& g, const Tensor& c,
                       const std::string& what) -> ::testing::AssertionResult {
      if (!g.defined() || !c.defined())
        return ::testing::AssertionFailure() << what << ": undefined";
      if (loose == 0) return test::close(g, c, tol, what);
      if (!g.device().is_cuda()) return ::testing::AssertionFailure() << what << ": not on CUDA";
      Tensor e = c.to(kFloat32);
      const double scale = e.numel() ? amax(abs(e), {}).item<double>() : 0;
      auto r = test::all_close(g.cpu().to(kFloat32), e, loose, loose * scale);
      if (!r) return ::testing::AssertionFailure() << what << ": " << r.message();
      return r;
    };
    if (got.outs.size() != want.outs.size())
      return ::testing::AssertionFailure()
             << "output count " << got.outs.size() << " vs " << want.outs.size();
    for (size_t i = 0; i < want.outs.size(); ++i)
      if (auto r = compare(got.outs[i], want.outs[i], "output " + std::to_string(i)); !r) return r;
    for (size_t i = 0; i < want.input_grads.size(); ++i)
      if (auto r = compare(got.input_grads[i], want.input_grads[i],
                           "grad of input " + std::to_string(i));
          !r)
        return r;
    for (size_t i = 0; i < want.param_grads.size(); ++i)
      if (auto r = compare(got.param_grads[i].second, want.param_grads[i].second,
                           want.param_grads[i].first + " grad");
          !r)
        return r;
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw: " << e.what();
  }
}

const Tol kF32{1e-4, 1e-5};

template <class M>
M& as(nn::Module& m) {
  return static_cast<M&>(m);
}

}  // namespace

TEST_F(CudaTransformer, MultiheadAttentionMatchesCpu) {
  using MHA = nn::MultiheadAttention;
  auto make = [](nn::MultiheadAttentionOptions o) {
    return [o] { return std::make_shared<MHA>(16, 4, o); };
  };
  const int64_t L = 5, S = 7, N = 3;
  Tensor q = rnd({L, N, 16}, 1), k = rnd({S, N, 16}, 2), v = rnd({S, N, 16}, 3);
  Tensor pad = padding_mask(N, S, {0, 3, 6});
  Tensor fmask3 = rnd({N * 4, L, S}, 4);
  // Cross-attention with weights and a bool key padding mask.
  EXPECT_TRUE(same_on_cuda(
      make({}),
      [](nn::Module& m, auto& x) {
        auto [out, w] = as<MHA>(m)(x[0], x[1], x[2], x[3]);
        return std::vector<Tensor>{out, w};
      },
      {q, k, v, pad}, 3, false, kF32));
  // Per-head weights, a float [N * H, L, S] mask, no weights.
  for (bool weights : {true, false})
    EXPECT_TRUE(same_on_cuda(
        make({}),
        [weights](nn::Module& m, auto& x) {
          auto [out, w] = as<MHA>(m)(x[0], x[1], x[2], x[3], weights, x[4], false);
          return weights ? std::vector<Tensor>{out, w} : std::vector<Tensor>{out};
        },
        {q, k, v, pad, fmask3}, 3, false, kF32))
        << weights;
  // Self-attention, batch first: no mask, and causal without a mask; kdim/vdim and bias_kv.
  Tensor x = rnd({N, S, 16}, 5);
  for (bool causal : {false, true})
    EXPECT_TRUE(same_on_cuda(
        make({.batch_first = true}),
        [causal](nn::Module& m, auto& in) {
          return std::vector<Tensor>{
              as<MHA>(m)(in[0], in[0], in[0], {}, false, {}, true, causal).attn_output};
        },
        {x}, 1, true, kF32))
        << causal;
  EXPECT_TRUE(same_on_cuda(
      make({.add_bias_kv = true, .add_zero_attn = true, .kdim = 5, .vdim = 3}),
      [](nn::Module& m, auto& in) {
        auto [out, w] = as<MHA>(m)(in[0], in[1], in[2], in[3]);
        return std::vector<Tensor>{out, w};
      },
      {q, rnd({S, N, 5}, 6), rnd({S, N, 3}, 7), pad}, 3, false, kF32));
}

TEST_F(CudaTransformer, LayersMatchCpu) {
  const int64_t S = 6, T = 4, N = 2;
  Tensor pad = padding_mask(N, S, {2, 0});
  Tensor causal = nn::Transformer::generate_square_subsequent_mask(T);
  for (bool bf : {false, true})
    for (bool nf : {false, true}) {
      SCOPED_TRACE(std::string(bf ? "batch_first " : "") + (nf ? "norm_first" : "post-norm"));
      nn::TransformerLayerOptions o{.d_model = 16,
                                    .nhead = 2,
                                    .dim_feedforward = 24,
                                    .dropout = 0.0,
                                    .activation = nf ? "gelu" : "relu",
                                    .batch_first = bf,
                                    .norm_first = nf};
      Tensor src = rnd(bf ? Shape{N, S, 16} : Shape{S, N, 16}, 8);
      Tensor tgt = rnd(bf ? Shape{N, T, 16} : Shape{T, N, 16}, 9);
      EXPECT_TRUE(same_on_cuda([o] { return std::make_shared<nn::TransformerEncoderLayer>(o); },
                               [](nn::Module& m, auto& x) {
                                 return std::vector<Tensor>{
                                     as<nn::TransformerEncoderLayer>(m).forward(x[0], {}, x[1])};
                               },
                               {src, pad}, 1, true, kF32));
      EXPECT_TRUE(same_on_cuda([o] { return std::make_shared<nn::TransformerDecoderLayer>(o); },
                               [](nn::Module& m, auto& x) {
                                 return std::vector<Tensor>{
                                     as<nn::TransformerDecoderLayer>(m).forward(
                                         x[0], x[1], x[2], {}, {}, x[3], true)};
                               },
                               {tgt, src, causal, pad}, 2, true, kF32));
    }
}

TEST_F(CudaTransformer, TransformerMatchesCpu) {
  Tensor src = rnd({2, 6, 16}, 10), tgt = rnd({2, 5, 16}, 11);
  Tensor tgt_mask = nn::Transformer::generate_square_subsequent_mask(5);
  EXPECT_TRUE(same_on_cuda(
      [] {
        return std::make_shared<nn::Transformer>(nn::TransformerOptions{.d_model = 16,
                                                                        .nhead = 4,
                                                                        .num_encoder_layers = 2,
                                                                        .num_decoder_layers = 2,
                                                                        .dim_feedforward = 32,
                                                                        .batch_first = true});
      },
      [](nn::Module& m, auto& x) {
        return std::vector<Tensor>{as<nn::Transformer>(m).forward(x[0], x[1], {}, x[2])};
      },
      {src, tgt, tgt_mask}, 2, false, kF32));
}

TEST_F(CudaTransformer, Bfloat16AutocastIsCloseToFloat32) {
  // head_dim 64: self-attention without masks takes the fused kernel in bfloat16. GELU, not
  // ReLU: bfloat16 rounding flips ReLU's gate for pre-activations near 0, and each flip moves a
  // linear1.weight gradient by a whole product, far beyond a rounding bound.
  nn::TransformerLayerOptions o{.d_model = 128,
                                .nhead = 2,
                                .dim_feedforward = 256,
                                .dropout = 0.0,
                                .activation = "gelu",
                                .batch_first = true,
                                .norm_first = true};
  Tensor src = rnd({2, 33, 128}, 12);
  for (bool causal : {false, true})
    EXPECT_TRUE(
        same_on_cuda([o] { return std::make_shared<nn::TransformerEncoderLayer>(o); },
                     [causal](nn::Module& m, auto& x) {
                       return std::vector<Tensor>{
                           as<nn::TransformerEncoderLayer>(m).forward(x[0], {}, {}, causal)};
                     },
                     {src}, 1, true, kF32, 5e-2))
        << causal;
  // With a padding mask (the composed path) and the weights.
  Tensor pad = padding_mask(2, 33, {0, 10});
  EXPECT_TRUE(same_on_cuda(
      [] {
        return std::make_shared<nn::MultiheadAttention>(
            128, 2, nn::MultiheadAttentionOptions{.batch_first = true});
      },
      [](nn::Module& m, auto& x) {
        auto [out, w] = as<nn::MultiheadAttention>(m)(x[0], x[0], x[0], x[1]);
        return std::vector<Tensor>{out, w};
      },
      {src, pad}, 1, false, kF32, 5e-2));
}
