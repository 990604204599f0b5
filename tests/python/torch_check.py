"""torch_check.py - the torch.distributed backend "weft" (torch 1.13 or later), on every rank:
every op over "weft" against the same op over "gloo" on the same inputs and against the exact
expected result, for every dtype torch and Weft share, synchronous and async_op=True; that
async calls overlap; the errors for what the backend cannot serve; then DDP training of
examples/torch_ddp.py over "weft" and over "gloo" from the same start (losses decrease,
parameters agree: bitwise at 2 ranks, within 1e-6 relative above). Prints "N checks passed".
    weft-run -n 2 python3 torch_check.py weft://            (ranks from weft-run)
    python3 spawn.py 3 python3 torch_check.py env:// tcp:// file://   (then re-inits)
"""
import os
import sys
import tempfile
import time

import torch
import torch.distributed as dist

import weft
import weft.torch  # noqa: F401 - registers the backend "weft"

sys.dont_write_bytecode = True  # no __pycache__ left in examples/
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "examples"))
import torch_ddp  # noqa: E402

checks = 0
R = N = 0
DTYPES = [torch.int8, torch.uint8, torch.int32, torch.int64, torch.float16, torch.bfloat16,
          torch.float32, torch.float64]
OPS = [dist.ReduceOp.SUM, dist.ReduceOp.AVG, dist.ReduceOp.MIN, dist.ReduceOp.MAX,
       dist.ReduceOp.PRODUCT]
OPNAME = {0: "SUM", 1: "AVG", 2: "MIN", 3: "MAX", 4: "PRODUCT"}
gloo_lacks = set()


def check(cond, what):
    global checks
    if not cond:
        print("FAIL rank %d: %s" % (R, what), flush=True)
        os._exit(1)
    checks += 1


def vals(rank, n, dtype, salt=0):
    """Small positive integers: exact in every dtype, sums and products of 4 included."""
    return ((torch.arange(n) * 3 + rank * 7 + salt) % 5 + 1).to(dtype)


def ref_reduce(op, ts):
    st = torch.stack([t.double() for t in ts])
    if op == 0:
        return st.sum(0)
    if op == 1:
        return st.sum(0) / len(ts)
    if op == 2:
        return st.min(0).values
    if op == 3:
        return st.max(0).values
    return st.prod(0)


def same(a, b, dtype, op=None):
    """Exact, but for AVG: floats within their rounding, integers truncated."""
    if op == 1:
        if not dtype.is_floating_point:
            b = b.trunc()
        eps = {torch.float16: 2 ** -10, torch.bfloat16: 2 ** -7, torch.float32: 2 ** -22}
        return torch.allclose(a.double(), b.double(), rtol=eps.get(dtype, 1e-15), atol=0)
    return torch.equal(a.double(), b.double())


def both(name, dtype, fn, gloo):
    """Runs fn(group, async_op) over weft (sync and async) and gloo; returns (weft, gloo or
    None) results."""
    out_w = fn(None, False)
    out_a = fn(None, True)
    check(all(torch.equal(x, y) for x, y in zip(out_w, out_a)),
          "%s %s: async_op=True differs from sync" % (name, dtype))
    try:
        out_g = fn(gloo, False)
    except RuntimeError as e:
        if dtype not in gloo_lacks and R == 0:
            print("# skip - gloo comparison of %s (%s and the like): gloo cannot (%s)" %
                  (dtype, name, str(e).splitlines()[0][:80]))
        gloo_lacks.add(dtype)
        return out_w, None
    check(all(torch.equal(x, y) for x, y in zip(out_w, out_g)),
          "%s %s: weft and gloo differ" % (name, dtype))
    return out_w, out_g


def run(async_op, work, outs):
    """Waits the way users do: work.wait(), or the future's value for async calls."""
    if async_op:
        fut = work.get_future()
        fut.wait()
        check(work.is_completed() and work.is_success(), "async work completed")
    return outs


def every_op(gloo):
    for dtype in DTYPES:
        for n in (1, 4099):
            for op in OPS:
                def ar(g, a, op=op):
                    t = vals(R, n, dtype)
                    return run(a, dist.all_reduce(t, op=op, group=g, async_op=a), [t])
                if op == dist.ReduceOp.AVG:  # gloo has no AVG
                    w = [ar(None, False)[0], ar(None, True)[0]]
                else:
                    w, _ = both("all_reduce " + OPNAME[op.op if hasattr(op, "op") else op],
                                dtype, ar, gloo)
                want = ref_reduce(OPS.index(op), [vals(r, n, dtype) for r in range(N)])
                check(same(w[0], want, dtype, OPS.index(op)),
                      "all_reduce %s %s n=%d" % (OPS.index(op), dtype, n))

                def red(g, a, op=op):
                    t = vals(R, n, dtype, 1)
                    # the non-root ranks' tensors are unspecified afterwards (gloo writes them)
                    return run(a, dist.reduce(t, dst=N - 1, op=op, group=g, async_op=a),
                               [t] if R == N - 1 else [])
                if op != dist.ReduceOp.AVG:
                    w, _ = both("reduce", dtype, red, gloo)
                    if R == N - 1:
                        want = ref_reduce(OPS.index(op), [vals(r, n, dtype, 1)
                                                          for r in range(N)])
                        check(same(w[0], want, dtype), "reduce %s n=%d" % (dtype, n))

                def rs(g, a, op=op):
                    out = torch.empty(n, dtype=dtype)
                    ins = [vals(R, n, dtype, 10 + p) for p in range(N)]
                    return run(a, dist.reduce_scatter(out, ins, op=op, group=g, async_op=a),
                               [out])
                w = rs(None, False)
                check(torch.equal(w[0], rs(None, True)[0]), "reduce_scatter async")
                want = ref_reduce(OPS.index(op), [vals(r, n, dtype, 10 + R) for r in range(N)])
                check(same(w[0], want, dtype, OPS.index(op)),
                      "reduce_scatter %s %s n=%d" % (OPS.index(op), dtype, n))

                def rsb(g, a, op=op):
                    out = torch.empty(n, dtype=dtype)
                    inp = torch.cat([vals(R, n, dtype, 10 + p) for p in range(N)])
                    return run(a, dist.reduce_scatter_tensor(out, inp, op=op, group=g,
                                                             async_op=a), [out])
                check(same(rsb(None, False)[0], want, dtype, OPS.index(op)) and
                      same(rsb(None, True)[0], want, dtype, OPS.index(op)),
                      "reduce_scatter_tensor %s" % dtype)

            def bc(g, a):
                t = vals(R, n, dtype, 2)
                return run(a, dist.broadcast(t, src=1 % N, group=g, async_op=a), [t])
            w, _ = both("broadcast", dtype, bc, gloo)
            check(torch.equal(w[0], vals(1 % N, n, dtype, 2)), "broadcast %s" % dtype)

            def ag(g, a):
                outs = [torch.empty(n, dtype=dtype) for _ in range(N)]
                return run(a, dist.all_gather(outs, vals(R, n, dtype, 3), group=g,
                                              async_op=a), outs)
            w, _ = both("all_gather", dtype, ag, gloo)
            check(all(torch.equal(w[r], vals(r, n, dtype, 3)) for r in range(N)),
                  "all_gather %s" % dtype)

            def agb(g, a):
                out = torch.empty(N * n, dtype=dtype)
                return run(a, dist.all_gather_into_tensor(out, vals(R, n, dtype, 3), group=g,
                                                          async_op=a), [out])
            w = agb(None, False)
            check(torch.equal(w[0], torch.cat([vals(r, n, dtype, 3) for r in range(N)])) and
                  torch.equal(agb(None, True)[0], w[0]), "all_gather_into_tensor %s" % dtype)

            def a2a(g, a):
                inp = torch.cat([vals(R * N + p, n, dtype, 4) for p in range(N)])
                out = torch.empty(N * n, dtype=dtype)
                return run(a, dist.all_to_all_single(out, inp, group=g, async_op=a), [out])
            w, _ = both("all_to_all_single", dtype, a2a, gloo)
            check(torch.equal(w[0], torch.cat([vals(p * N + R, n, dtype, 4)
                                               for p in range(N)])),
                  "all_to_all_single %s" % dtype)

        # Uneven splits: rank r sends p + 1 rows to rank p.
        def a2av(g, a):
            inp = torch.cat([vals(R * N + p, (p + 1) * 3, dtype, 5) for p in range(N)])
            out = torch.empty((R + 1) * 3 * N, dtype=dtype)
            return run(a, dist.all_to_all_single(out.view(-1, 3), inp.view(-1, 3),
                                                 [R + 1] * N, [p + 1 for p in range(N)],
                                                 group=g, async_op=a), [out])
        w, _ = both("all_to_all_single (uneven)", dtype, a2av, gloo)
        check(torch.equal(w[0], torch.cat([vals(p * N + R, (R + 1) * 3, dtype, 5)
                                           for p in range(N)])), "uneven all_to_all %s" % dtype)

        def a2al(g, a):
            ins = [vals(R * N + p, p + 2, dtype, 6) for p in range(N)]
            outs = [torch.empty(R + 2, dtype=dtype) for _ in range(N)]
            return run(a, dist.all_to_all(outs, ins, group=g, async_op=a), outs)
        w = a2al(None, False)
        check(all(torch.equal(w[p], vals(p * N + R, R + 2, dtype, 6)) for p in range(N)) and
              all(torch.equal(x, y) for x, y in zip(w, a2al(None, True))),
              "all_to_all list %s" % dtype)

        def gat(g, a):
            outs = [torch.empty(7, dtype=dtype) for _ in range(N)] if R == 0 else None
            return run(a, dist.gather(vals(R, 7, dtype, 7), outs, dst=0, group=g, async_op=a),
                       outs or [])
        w, _ = both("gather", dtype, gat, gloo)
        check(R != 0 or all(torch.equal(w[r], vals(r, 7, dtype, 7)) for r in range(N)),
              "gather %s" % dtype)

        def sca(g, a):
            out = torch.empty(7, dtype=dtype)
            ins = [vals(p, 7, dtype, 8) for p in range(N)] if R == N - 1 else None
            return run(a, dist.scatter(out, ins, src=N - 1, group=g, async_op=a), [out])
        w, _ = both("scatter", dtype, sca, gloo)
        check(torch.equal(w[0], vals(R, 7, dtype, 8)), "scatter %s" % dtype)

        # send/recv around the ring; blocking, ordered so that none waits on another.
        for g in (None, gloo):
            t = vals(R, 100, dtype, 9)
            got = torch.empty(100, dtype=dtype)
            if R % 2 == 0:
                dist.send(t, (R + 1) % N, group=g)
                dist.recv(got, (R - 1) % N, group=g)
            else:
                dist.recv(got, (R - 1) % N, group=g)
                dist.send(t, (R + 1) % N, group=g)
            check(torch.equal(got, vals((R - 1) % N, 100, dtype, 9)), "send/recv %s" % dtype)
        reqs = [dist.isend(vals(R, 50, dtype, 11), (R + 1) % N),
                dist.irecv(got[:50], (R - 1) % N)]
        for q in reqs:
            q.wait()
        check(torch.equal(got[:50], vals((R - 1) % N, 50, dtype, 11)), "isend/irecv %s" % dtype)
    dist.barrier()
    check(dist.barrier(async_op=True).wait(), "async barrier")


def overlap():
    """async_op=True returns at once and lets the caller compute while the call waits for
    the last rank, which joins 0.5 s late."""
    t = torch.ones(1000)
    if R == N - 1:
        time.sleep(0.5)
    t0 = time.monotonic()
    work = dist.all_reduce(t, async_op=True)
    issued = time.monotonic() - t0
    done_early = work.is_completed()
    x = torch.randn(200, 200)
    for _ in range(5):
        x = x @ x.tanh()  # computation while the call is in flight
    work.wait()
    check(torch.equal(t, torch.full((1000,), float(N))), "async all_reduce result")
    if R != N - 1:
        check(issued < 0.2 and not done_early,
              "async all_reduce returned after %.3f s, completed=%s" % (issued, done_early))


def sync_inline():
    """Synchronous calls run on the calling thread (no switch to the worker); async_op=True
    calls go to the worker."""
    runner = dist.distributed_c10d._get_default_group()._runner
    seen = []
    call_now, submit = runner.call_now, runner.submit

    def spy_call_now(fn, *args):
        rc = call_now(fn, *args)
        seen.append(("inline", rc is not weft.torch._BUSY))
        return rc

    def spy_submit(work):
        seen.append(("worker", work._call))
        return submit(work)
    runner.call_now, runner.submit = spy_call_now, spy_submit
    try:
        t = torch.ones(4)
        dist.all_reduce(t)
        dist.broadcast(t, 0)
        dist.all_reduce(t, async_op=True).wait()
        dist.broadcast(t, 0, async_op=True).wait()
    finally:
        del runner.call_now, runner.submit
    check(seen == [("inline", True), ("inline", True), ("worker", "all_reduce"),
                   ("worker", "broadcast")], "calls run inline / on the worker: %s" % seen)
    check(torch.equal(t, torch.full((4,), float(N ** 2))), "inline all_reduce results: %s" % t)


def no_retention():
    """The group keeps its Work objects alive (torch 1.13 needs it), but not the tensors of
    completed calls: fresh tensors reduced in a loop are all freed."""
    import weakref

    refs = []
    for i in range(20):
        t = torch.ones(1000)
        refs.append(weakref.ref(t))
        if i % 2:
            dist.all_reduce(t)
        else:
            dist.all_reduce(t, async_op=True).wait()
        del t
    check(all(r() is None for r in refs), "%d of %d tensors of completed calls still alive" %
          (sum(r() is not None for r in refs), len(refs)))


def errors():
    cases = [
        (lambda: dist.all_reduce(torch.ones(3), op=dist._make_nccl_premul_sum(2.0)),
         "PREMUL_SUM"),
        (lambda: dist.all_reduce(torch.ones(3), op=dist.ReduceOp.BAND), "SUM, AVG, MIN, MAX"),
        (lambda: dist.all_reduce(torch.ones(3, dtype=torch.bool)), "dtype torch.bool"),
        (lambda: dist.all_reduce(torch.ones(3, dtype=torch.int16)), "bfloat16, float32"),
        (lambda: dist.all_reduce(torch.eye(3).to_sparse()), "sparse"),
        (lambda: dist.all_reduce(torch.ones(3, device="meta")), "CPU or CUDA"),
        (lambda: dist.all_gather_into_tensor(torch.empty(2 * N + 1), torch.ones(2)), "output"),
        (lambda: dist.recv(torch.ones(3)), "source"),
    ]
    for fn, text in cases:
        try:
            fn()
            check(False, "no error for a call that should fail with %r" % text)
        except (RuntimeError, ValueError) as e:
            check(text in str(e), "error %r lacks %r" % (str(e), text))
    check(dist.get_backend() == "weft", "get_backend() says %r" % dist.get_backend())


def inline_error():
    """A synchronous all_reduce that fails in the C call it made on the caller's thread
    raises Weft's error: rank 0 aborts its side of a group, the others' call fails with
    weft.RemoteError; rank 0's own call is refused before reaching C."""
    g = dist.new_group(backend="weft")
    t = torch.ones(8)
    dist.all_reduce(t, group=g)  # everyone connected
    dist.barrier()  # and done with it: rank 0 may finish first
    if R == 0:
        g.comm.abort()
    want = weft.InvalidArgError if R == 0 else weft.RemoteError
    try:
        dist.all_reduce(t, group=g)
        check(False, "rank %d: all_reduce on a group rank 0 aborted did not fail" % R)
    except weft.Error as e:
        check(isinstance(e, want), "rank %d: %r is not a %s" % (R, e, want.__name__))
    dist.barrier()  # over the default group, still whole


def ddp(gloo):
    """examples/torch_ddp.py's model over weft and over gloo, from the same start."""
    steps = 60
    losses, model, w_s = torch_ddp.train(None, steps)
    ref_losses, ref, g_s = torch_ddp.train(gloo, steps)
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    check(last < first * 0.6, "DDP loss %.4f -> %.4f did not decrease" % (first, last))
    for p, q in zip(model.parameters(), ref.parameters()):
        if N == 2:
            check(torch.equal(p, q), "DDP parameters over weft and gloo differ at 2 ranks")
        else:
            check(torch.allclose(p, q, rtol=1e-6, atol=1e-7),
                  "DDP parameters weft vs gloo: max difference %g" % (p - q).abs().max())
        # and identical across ranks
        g = [torch.empty_like(p) for _ in range(N)]
        dist.all_gather(g, p.detach())
        check(all(torch.equal(x, g[0]) for x in g), "DDP parameters differ across ranks")
    if R == 0:
        print("DDP %d steps, %d ranks: loss %.4f -> %.4f; %.2f ms per step over weft, %.2f "
              "over gloo" % (steps, N, first, last, w_s * 1e3, g_s * 1e3))


def one_allreduce():
    t = torch.full((5,), float(R + 1))
    dist.all_reduce(t)
    check(torch.equal(t, torch.full((5,), N * (N + 1) / 2)), "all_reduce after re-init")


def main():
    global R, N
    inits = sys.argv[1:] or ["weft://"]
    dist.init_process_group("weft", init_method=inits[0])
    R, N = dist.get_rank(), dist.get_world_size()
    gloo = dist.new_group(backend="gloo")
    t0 = time.monotonic()
    every_op(gloo)
    t1 = time.monotonic()
    overlap()
    sync_inline()
    no_retention()
    errors()
    inline_error()
    ddp(gloo)
    if R == 0:
        print("every op: %.1f s; overlap, errors, DDP: %.1f s" % (t1 - t0, time.monotonic() - t1))
    dist.destroy_process_group()
    tmp = tempfile.gettempdir()
    for init in inits[1:]:
        # tcp://: rank 0 serves the store on MASTER_PORT + 2; file://: a file all ranks see.
        if init == "tcp://":
            init = "tcp://%s:%d" % (os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]) + 2)
        elif init == "file://":
            init = "file://%s/weft-torch-check-%s" % (tmp, os.environ["MASTER_PORT"])
        dist.init_process_group("weft", init_method=init, rank=R, world_size=N)
        one_allreduce()
        dist.destroy_process_group()
    print("rank %d: torch_check (torch %s, %d ranks, %s): %d checks passed" %
          (R, torch.__version__, N, " then ".join(inits), checks), flush=True)


if __name__ == "__main__":
    main()
