"""torch_ddp.py - DistributedDataParallel over the "weft" backend: a small MLP on synthetic
data with a fixed seed. The one-word switch is the backend name given to
init_process_group.

    weft-run -n 2 python3 examples/torch_ddp.py                     # ranks from weft-run
    torchrun --nproc_per_node 2 examples/torch_ddp.py               # torch >= 2 (env://)
    RANK=.. WORLD_SIZE=.. MASTER_ADDR=.. MASTER_PORT=.. python3 examples/torch_ddp.py

--compare also trains the same model over "gloo" (a second process group) from the same
start, and reports the largest difference between the two final parameter sets.
"""
import argparse
import os
import time

import torch
import torch.distributed as dist
import torch.nn as nn

import weft.torch  # noqa: F401 - registers the backend "weft" and the weft:// rendezvous


def make_model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                         nn.Linear(64, 1))


def train(group, steps, seed=1234, lr=0.05):
    """Trains a fresh model with DDP over `group`; returns (losses, model, seconds per step).
    Every rank draws its own batches from a generator seeded with its rank."""
    rank = dist.get_rank()
    model = make_model(seed)
    ddp = nn.parallel.DistributedDataParallel(model, process_group=group)
    opt = torch.optim.SGD(ddp.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed + rank)
    w_true = torch.linspace(-1, 1, 32)
    losses = []
    t0 = time.perf_counter()
    for _ in range(steps):
        x = torch.randn(64, 32, generator=gen)
        y = (x @ w_true).tanh().unsqueeze(1)
        loss = nn.functional.mse_loss(ddp(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model, (time.perf_counter() - t0) / max(steps, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--backend", default="weft")
    ap.add_argument("--init", default=None,
                    help="init_method (default: weft:// under weft-run, srun or mpirun "
                         "without RANK set, else env://)")
    ap.add_argument("--compare", action="store_true", help="also train over gloo")
    args = ap.parse_args()
    init = args.init or ("env://" if "RANK" in os.environ else "weft://")
    dist.init_process_group(args.backend, init_method=init)
    rank, size = dist.get_rank(), dist.get_world_size()
    losses, model, step_s = train(None, args.steps)
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    if rank == 0:
        print("%s, %d ranks: loss %.5f -> %.5f over %d steps, %.3f ms per step" %
              (args.backend, size, first, last, args.steps, step_s * 1e3))
    if args.compare:
        gloo = dist.new_group(backend="gloo")
        _, ref, ref_s = train(gloo, args.steps)
        diff = max(float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))
                   for a, b in zip(model.parameters(), ref.parameters()))
        if rank == 0:
            print("gloo, %d ranks: %.3f ms per step; largest relative parameter difference "
                  "weft vs gloo: %.3g" % (size, ref_s * 1e3, diff))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
