"""Reference oracle for anvil's tests: evaluates PyTorch expressions on tensors sent by a
test process and returns the result and the gradients of sum(result * grad_out).

Protocol (stdin/stdout, one request at a time):
  request:  one JSON line {"expr": str, "inputs": [{"dtype", "shape"}...], "grad": [bool...],
            "grad_out": {"dtype", "shape"} | null}, then the raw little-endian bytes of each
            input and of grad_out, in order.
  response: one JSON line {"ok": true, "out": {"dtype", "shape"}, "requires_grad": bool,
            "grads": [meta | null]} and the raw bytes of out and each gradient; or
            {"ok": false, "error": str}. requires_grad says whether the result is part of an
            autograd graph (inputs flagged in "grad" require grad, with or without grad_out).
  A request with "code" instead of "expr" runs Python statements (imports allowed) that must
  assign `out` (a tensor or a list/tuple of tensors); the response is {"ok": true,
  "outs": [meta...]} and the raw bytes of each.
Inputs are named a, b, c, ... in the expression; torch and F (torch.nn.functional) are in scope.
"""
import json
import math
import sys
import traceback

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
DTYPES = {
    "bool": torch.bool, "uint8": torch.uint8, "int32": torch.int32, "int64": torch.int64,
    "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
    "float64": torch.float64,
}
NAMES = {v: k for k, v in DTYPES.items()}


def read_tensor(stream, meta):
    dtype = DTYPES[meta["dtype"]]
    shape = meta["shape"]
    n = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    data = stream.read(n)
    if len(data) != n:
        raise EOFError("short read")
    if n == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(data), dtype=dtype).reshape(shape).clone()


def to_bytes(t):
    t = t.detach().contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def meta(t):
    return {"dtype": NAMES[t.dtype], "shape": list(t.shape)}


def main():
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        line = inp.readline()
        if not line:
            return
        req = json.loads(line)
        try:
            xs = [read_tensor(inp, m) for m in req["inputs"]]
            g = read_tensor(inp, req["grad_out"]) if req.get("grad_out") else None
        except EOFError:
            return
        try:
            want = req.get("grad") or [False] * len(xs)
            for x, w in zip(xs, want):
                if w:
                    x.requires_grad_(True)
            scope = {"torch": torch, "F": F, "math": math}
            scope.update({chr(ord("a") + i): x for i, x in enumerate(xs)})
            scope["inputs"] = xs  # all of them, for calls with more than the alphabet
            if "code" in req:
                exec(req["code"], scope)
                outs = scope["out"]
                outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
                outs = [o if isinstance(o, torch.Tensor) else torch.tensor(o) for o in outs]
                out.write((json.dumps({"ok": True, "outs": [meta(o) for o in outs]}) + "\n").encode())
                for o in outs:
                    out.write(to_bytes(o))
                out.flush()
                continue
            y = eval(req["expr"], scope)
            if not isinstance(y, torch.Tensor):
                y = torch.tensor(y)
            grads = [None] * len(xs)
            if g is not None and any(want) and y.requires_grad:
                gs = torch.autograd.grad(y, [x for x, w in zip(xs, want) if w], g,
                                         allow_unused=True)
                it = iter(gs)
                grads = [next(it) if w else None for w in want]
            resp = {"ok": True, "out": meta(y), "requires_grad": y.requires_grad,
                    "grads": [meta(gr) if gr is not None else None for gr in grads]}
            out.write((json.dumps(resp) + "\n").encode())
            out.write(to_bytes(y))
            for gr in grads:
                if gr is not None:
                    out.write(to_bytes(gr))
        except Exception as e:  # the test reports it
            msg = "".join(traceback.format_exception_only(type(e), e)).strip()
            out.write((json.dumps({"ok": False, "error": msg}) + "\n").encode())
        out.flush()


if __name__ == "__main__":
    main()
