#!/usr/bin/env python3
"""torch_nccl_check.py - PyTorch's "nccl" backend on Weft's libnccl.so.2 (bench/gpu.sh nccl).

Run by torchrun with LD_PRELOAD=<Weft's libnccl.so.2>, every rank on the same GPU:
  1. says which libnccl.so.2 the process mapped and the version torch.cuda.nccl reports
     (Weft advertises 2.21.5; NVIDIA's library would report its own);
  2. checks torch.distributed collectives on CUDA tensors exactly, for every dtype and op the
     two support: all_reduce (sum, product, min, max, avg), broadcast, all_gather, reduce,
     reduce_scatter, send/recv, barrier;
  3. trains a small model with DistributedDataParallel and checks that the loss decreases
     and that the ranks end with the same parameters.
Prints one line per check ("ok - ..." / "not ok - ...") and a summary; exits 1 on a failure.
  WEFT_TORCH_STEPS=60 (DDP steps)
"""
import os
import sys
import time

import torch
import torch.distributed as dist

rank = int(os.environ.get("RANK", "0"))
world = int(os.environ.get("WORLD_SIZE", "1"))
passed = 0
failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        if rank == 0:
            print(f"ok - {what}", flush=True)
    else:
        failed += 1
        print(f"not ok - rank {rank}: {what}: {detail}", flush=True)


def mapped_libnccl():
    with open("/proc/self/maps") as f:
        return sorted({line.split()[-1] for line in f if "libnccl" in line})


def values(n, r, op):
    """Small integers, exact in every dtype (bfloat16 holds integers up to 256)."""
    i = torch.arange(n, dtype=torch.int64)
    if op == "product":
        return 1 + (i + r) % 2
    if op == "avg":
        return i % 11 + (world if r == 0 else 0)
    return (i * 7 + r * 3) % 11


def expected(n, op):
    vs = [values(n, r, op) for r in range(world)]
    out = vs[0].clone()
    for v in vs[1:]:
        if op == "product":
            out = out * v
        elif op == "min":
            out = torch.minimum(out, v)
        elif op == "max":
            out = torch.maximum(out, v)
        else:
            out = out + v
    return out // world if op == "avg" else out


def collectives(dev):
    dtypes = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8,
              torch.uint8, torch.int32, torch.int64]
    # Newer PyTorch maps these to ncclUint32/ncclUint64; older ones refuse them.
    dtypes += [d for d in (getattr(torch, "uint32", None), getattr(torch, "uint64", None)) if d]
    ops = {"sum": dist.ReduceOp.SUM, "product": dist.ReduceOp.PRODUCT,
           "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX, "avg": dist.ReduceOp.AVG}
    n = 1000
    for dt in dtypes:
        for name, op in ops.items():
            if name == "avg" and not dt.is_floating_point:
                continue  # NCCL's avg of integers is not offered by torch either
            what = f"all_reduce {name} {dt}"
            try:
                t = values(n, rank, name).to(dt).to(dev)
                dist.all_reduce(t, op=op)
                torch.cuda.synchronize()
                want = expected(n, name).to(dt)
                check(torch.equal(t.cpu(), want), what, "values differ")
            except (RuntimeError, TypeError, ValueError) as e:
                if dt in (getattr(torch, "uint32", None), getattr(torch, "uint64", None)):
                    if rank == 0:
                        print(f"# skip - {what}: this PyTorch refuses it ({str(e)[:80]})")
                else:
                    check(False, what, str(e)[:300])
    for dt in (torch.float32, torch.bfloat16, torch.int64):
        try:
            t = (values(37, rank, "sum") + 1).to(dt).to(dev)
            dist.broadcast(t, src=world - 1)
            check(torch.equal(t.cpu(), (values(37, world - 1, "sum") + 1).to(dt)),
                  f"broadcast {dt}")
            out = torch.empty(world * 37, dtype=dt, device=dev)
            dist.all_gather_into_tensor(out, (values(37, rank, "sum")).to(dt).to(dev))
            want = torch.cat([values(37, r, "sum") for r in range(world)]).to(dt)
            check(torch.equal(out.cpu(), want), f"all_gather_into_tensor {dt}")
            inp = values(world * 37, rank, "sum").to(dt).to(dev)
            rs = torch.empty(37, dtype=dt, device=dev)
            dist.reduce_scatter_tensor(rs, inp, op=dist.ReduceOp.SUM)
            want = expected(world * 37, "sum")[rank * 37:(rank + 1) * 37].to(dt)
            check(torch.equal(rs.cpu(), want), f"reduce_scatter_tensor sum {dt}")
            t = values(37, rank, "max").to(dt).to(dev)
            dist.reduce(t, dst=0, op=dist.ReduceOp.MAX)
            if rank == 0:
                check(torch.equal(t.cpu(), expected(37, "max").to(dt)), f"reduce max {dt}")
            send = (values(37, rank, "sum") + 2).to(dt).to(dev)
            recv = torch.empty_like(send)
            nxt, prv = (rank + 1) % world, (rank - 1) % world
            reqs = dist.batch_isend_irecv([dist.P2POp(dist.isend, send, nxt),
                                           dist.P2POp(dist.irecv, recv, prv)])
            for q in reqs:
                q.wait()
            torch.cuda.synchronize()
            check(torch.equal(recv.cpu(), (values(37, prv, "sum") + 2).to(dt)),
                  f"batch_isend_irecv ring {dt}")
        except RuntimeError as e:
            check(False, f"rooted/gather/p2p {dt}", str(e)[:300])
    dist.barrier()
    check(True, "barrier")


def ddp(dev):
    from torch.nn.parallel import DistributedDataParallel as DDP
    torch.manual_seed(0)  # the same initial model on every rank (DDP broadcasts it anyway)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, 1)).to(dev)
    ddp_model = DDP(model, device_ids=[dev.index])
    opt = torch.optim.SGD(ddp_model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(1234 + rank)  # each rank its own shard of the data
    w_true = torch.randn(32, 1, generator=torch.Generator().manual_seed(7))
    steps = int(os.environ.get("WEFT_TORCH_STEPS", "60"))
    losses = []
    for _ in range(steps):
        x = torch.randn(64, 32, generator=g)
        y = x @ w_true
        x, y = x.to(dev), y.to(dev)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(ddp_model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    if rank == 0:
        print(f"# DDP: {steps} steps, mean loss of the first 5 {first:.4f}, of the last 5 "
              f"{last:.4f}")
    check(last < 0.5 * first, "DDP: the loss decreases (last 5 < half the first 5)",
          f"{first:.4f} -> {last:.4f}")
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    check(all(torch.equal(gathered[0], x) for x in gathered),
          "DDP: every rank ends with the same parameters")


def main():
    dev = torch.device("cuda", int(os.environ.get("WEFT_TORCH_DEVICE", "0")))
    torch.cuda.set_device(dev)
    libs = mapped_libnccl()
    version = torch.cuda.nccl.version()
    if rank == 0:
        print(f"# torch {torch.__version__}, CUDA {torch.version.cuda}, {world} ranks on {dev} "
              f"({torch.cuda.get_device_name(dev)})")
        print(f"# libnccl mapped: {libs}; torch.cuda.nccl.version() = {version}")
    want = os.environ.get("WEFT_LIBNCCL")
    if want:
        check(libs == [os.path.realpath(want)], "only Weft's libnccl.so.2 is mapped", str(libs))
        check(tuple(version)[:2] == (2, 21), "torch.cuda.nccl.version() is Weft's 2.21",
              str(version))
    t0 = time.time()
    dist.init_process_group("nccl", device_id=dev)
    check(dist.get_backend() == "nccl", "init_process_group('nccl')")
    collectives(dev)
    t1 = time.time()
    ddp(dev)
    t2 = time.time()
    dist.destroy_process_group()
    print(f"torch_nccl_check: rank {rank}: {passed} passed, {failed} failed "
          f"(collectives {t1 - t0:.1f} s, DDP {t2 - t1:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
