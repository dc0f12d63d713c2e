"""Hugging Face generate on bench_generate's setup, for comparison: GPT2LMHeadModel (GPT-2
124M, random weights, bfloat16) decoding greedily with its KV cache from a 32-token prompt,
256 new tokens (min_new_tokens keeps the length fixed), batch 1 and 16; the median of --runs
timed runs after one warm-up. One JSON line per batch size, bench_generate's keys.

    python bench/bench_generate_torch.py [--new=256] [--runs=3]
"""
import argparse
import json
import time

import torch
import transformers

p = argparse.ArgumentParser()
p.add_argument("--new", type=int, default=256)
p.add_argument("--runs", type=int, default=3)
a = p.parse_args()
torch.manual_seed(0)
cfg = transformers.GPT2Config(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
m = transformers.GPT2LMHeadModel(cfg).to("cuda", torch.bfloat16).eval()
for batch in (1, 16):
    prompt = torch.randint(0, 50257, (batch, 32), device="cuda")
    mask = torch.ones_like(prompt)

    def once():
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            m.generate(prompt, attention_mask=mask, do_sample=False, max_new_tokens=a.new,
                       min_new_tokens=a.new, pad_token_id=0)
        torch.cuda.synchronize()
        return time.perf_counter() - t0

    once()
    t = sorted(once() for _ in range(a.runs))[a.runs // 2]
    print(json.dumps({"impl": "transformers", "batch": batch, "prompt": 32, "new_tokens": a.new,
                      "dtype": "bfloat16", "seconds": round(t, 4),
                      "tokens_per_s": round(batch * a.new / t, 1),
                      "ms_per_step": round(1e3 * t / a.new, 3)}), flush=True)
