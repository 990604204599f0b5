"""torch_vs_gloo.py - torch.distributed over "weft" against "gloo", side by side in one run
(not a test): all_reduce float32 for sizes 8 B .. MAXBYTES, median of rounds of timed calls
per backend, rounds of the two interleaved; the bus bandwidth (algbw * 2(n-1)/n) and per
call latency of each and their ratio; the same sizes through weft.Comm directly (the
binding without torch); then the DDP step time of examples/torch_ddp.py over each backend.
For the binding's cost against C, run weft-perf on the same sizes in the same session:
    weft-run -n 2 build/bin/weft-perf allreduce -b 8 -e 256M -f 4 -c 0

    weft-run -n 2 /usr/bin/python3 bench/torch_vs_gloo.py [MAXBYTES] [ROUNDS]
"""
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist

import weft.torch  # noqa: F401 - registers the backend "weft"

sys.dont_write_bytecode = True  # no __pycache__ left in examples/
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import torch_ddp  # noqa: E402


def timed(fn, iters):
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters


def parse_size(text):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
    return int(float(text[:-1] if mult > 1 else text) * mult)


def main():
    maxbytes = parse_size(sys.argv[1]) if len(sys.argv) > 1 else 256 << 20
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    dist.init_process_group("weft", init_method="env://" if "RANK" in os.environ else
                            "weft://")
    rank, n = dist.get_rank(), dist.get_world_size()
    gloo = dist.new_group(backend="gloo")
    comm = dist.distributed_c10d._get_default_group().comm  # the weft.Comm under "weft"
    bus = 2 * (n - 1) / n
    if rank == 0:
        print("all_reduce float32, %d ranks, torch %s, median of %d rounds" %
              (n, torch.__version__, rounds))
        print("%10s %12s %12s %12s %10s %10s %10s %7s" %
              ("bytes", "weft us", "gloo us", "Comm us", "weft GB/s", "gloo GB/s",
               "Comm GB/s", "w/gloo"))
    size = 8
    while size <= maxbytes:
        t = torch.ones(size // 4)
        # About 200 MB per round (20 calls of 2 MiB measured the skew of the barrier and the
        # caches gloo's round left); gloo is ~50x slower at small sizes: fewer of its calls
        iters = {k: max(3, min(cap, int(2e8 // size)))
                 for k, cap in (("weft", 3000), ("gloo", 300), ("comm", 3000))}
        res = {"weft": [], "gloo": [], "comm": []}
        fns = {"weft": lambda: dist.all_reduce(t),
               "gloo": lambda: dist.all_reduce(t, group=gloo),
               "comm": lambda: comm.allreduce(t)}
        for k, f in fns.items():
            f()  # warm up (connections, buffers)
        for _ in range(rounds):
            for k, f in fns.items():
                res[k].append(timed(f, iters[k]))
        med = {k: statistics.median(v) for k, v in res.items()}
        if rank == 0:
            gb = {k: size / v * bus / 1e9 for k, v in med.items()}
            print("%10d %12.1f %12.1f %12.1f %10.3f %10.3f %10.3f %7.2f" %
                  (size, med["weft"] * 1e6, med["gloo"] * 1e6, med["comm"] * 1e6, gb["weft"],
                   gb["gloo"], gb["comm"], med["gloo"] / med["weft"]), flush=True)
        size *= 4 if size < (1 << 20) else 2
    steps = 200
    _, _, w_s = torch_ddp.train(None, steps)
    _, _, g_s = torch_ddp.train(gloo, steps)
    if rank == 0:
        print("DDP step (examples/torch_ddp.py model, %d steps): weft %.3f ms, gloo %.3f ms, "
              "gloo/weft %.2f" % (steps, w_s * 1e3, g_s * 1e3, g_s / w_s))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
