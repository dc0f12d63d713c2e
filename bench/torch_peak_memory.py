"""Peak device memory of PyTorch's training step for the reference workloads, which
torch_reference.py does not report: the same models, inputs, optimizers and autocast, a few
warm-up steps, then torch.cuda.max_memory_allocated over further steps (one JSON line each).
Usage: python3 bench/torch_peak_memory.py [gpt2 ...] [--modes=eager,compile]
        [--reference=../shared/bench/torch_reference.py]
"""
import importlib.util, json, sys

args = [a for a in sys.argv[1:] if not a.startswith("--")]
opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
spec = importlib.util.spec_from_file_location(
    "torch_reference", opts.get("reference", "../shared/bench/torch_reference.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
torch, F = ref.torch, ref.F

for name in args or ["gpt2"]:
    for mode in opts.get("modes", "eager,compile").split(","):
        torch._dynamo.reset(); torch.manual_seed(0)
        m, x, y, dt, opt, units = ref.WORKLOADS[name]()
        m = m.to(ref.dev)
        o = (torch.optim.AdamW(m.parameters(), 6e-4, weight_decay=0.1, fused=True) if opt == "adamw"
             else torch.optim.Adam(m.parameters(), 1e-3, fused=True) if opt == "adam"
             else torch.optim.SGD(m.parameters(), 0.1, momentum=0.9))
        def step():
            with torch.autocast("cuda", dtype=dt, enabled=dt != torch.float32):
                loss = F.cross_entropy(m(x), y)
            loss.backward(); o.step(); o.zero_grad(set_to_none=True)
        f = torch.compile(step) if mode == "compile" else step
        for _ in range(5): f()
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
        for _ in range(5): f()
        torch.cuda.synchronize()
        print(json.dumps(dict(workload=name, mode=mode,
                              peak_mem_mb=round(torch.cuda.max_memory_allocated() / 2**20))), flush=True)
