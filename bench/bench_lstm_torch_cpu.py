"""PyTorch's CPU LSTM on torch_reference.py's lstm workload, for bench_train_step lstm --device=cpu.

The same step (Embedding(128, 128) -> LSTM(128, 512, 2 layers, batch_first) -> Linear(512, 128),
batch 64 x 100 tokens, float32, cross-entropy, Adam(1e-3)) on the CPU with the given thread
count, timed by the wall clock after warm-up. Prints one JSON line.
Usage: python3 bench_lstm_torch_cpu.py [--threads=N] [--steps=5] [--warm=2]
"""
import json, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
threads = int(args.get("threads", torch.get_num_threads()))
steps, warm = int(args.get("steps", 5)), int(args.get("warm", 2))
torch.set_num_threads(threads)
torch.manual_seed(0)


class CharLSTM(nn.Module):
    def __init__(s):
        super().__init__()
        s.emb = nn.Embedding(128, 128)
        s.lstm = nn.LSTM(128, 512, 2, batch_first=True)
        s.out = nn.Linear(512, 128)

    def forward(s, x):
        return s.out(s.lstm(s.emb(x))[0]).reshape(-1, 128)


m = CharLSTM()
x = torch.randint(0, 128, (64, 100)); y = torch.randint(0, 128, (6400,))
o = torch.optim.Adam(m.parameters(), 1e-3)


def step():
    loss = F.cross_entropy(m(x), y)
    loss.backward(); o.step(); o.zero_grad(set_to_none=True)
    return loss.item()


for _ in range(warm): step()
times = []
for _ in range(steps):
    t0 = time.perf_counter(); step(); times.append((time.perf_counter() - t0) * 1e3)
times.sort()
print(json.dumps(dict(workload="lstm", mode="torch-cpu", threads=threads, median_step_ms=round(times[len(times) // 2], 1),
                      mkldnn=torch.backends.mkldnn.is_available(), torch=torch.__version__)))
