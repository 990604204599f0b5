"""torch_call_cost.py - what one torch.distributed.all_reduce costs in Python, without any
communication (not a test): on 1 rank, torch's all_reduce over "weft" against a Python
backend whose allreduce does nothing and returns a completed Work (torch's own cost, the
floor of any backend). The difference is the binding's own cost per call.

    WEFT_SO_PATH=build/lib/libweft.so PYTHONPATH=python /usr/bin/python3 bench/torch_call_cost.py
"""
import os
import sys
import time

import torch
import torch.distributed as dist
from torch._C._distributed_c10d import ProcessGroup

sys.dont_write_bytecode = True
import weft.torch  # noqa: E402 - registers "weft"


class _NoopGroup(ProcessGroup):
    def allreduce(self, tensors, opts=None):
        return weft.torch._DONE  # the completed Work weft.torch's synchronous calls return

    def getBackendName(self):  # noqa: N802 (torch's name)
        return "noop"


def per_call_us(rounds=5, calls=20000):
    t = torch.zeros(2)
    for _ in range(2000):
        dist.all_reduce(t)
    res = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            dist.all_reduce(t)
        res.append((time.perf_counter() - t0) / calls * 1e6)
    return sorted(res)[len(res) // 2], res


dist.Backend.register_backend("noop", lambda store, rank, size, timeout: _NoopGroup(rank, size))
os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
for i, backend in enumerate(["noop", "weft"]):
    os.environ["MASTER_PORT"] = str(29611 + i)
    dist.init_process_group(backend, rank=0, world_size=1)
    med, res = per_call_us()
    print("%-5s all_reduce on 1 rank: median %.2f us per call (rounds: %s)" %
          (backend, med, " ".join("%.2f" % r for r in res)))
    dist.destroy_process_group()
