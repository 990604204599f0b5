"""weft.torch: the torch.distributed backend "weft". `import weft.torch`, then
torch.distributed.init_process_group("weft", ...) under any launcher torch supports.

Rank 0 of each process group creates a Weft unique id and shares it through the store that
init_process_group hands the backend; every rank then joins a weft.Comm with it.
Host-tensor calls run in order on one worker thread per process group (the GIL is released
inside Weft), so async_op=True overlaps with computation; a synchronous call (async_op=False
in the torch.distributed function that called us), or wait() on a call the worker has not
started, runs on the calling thread when nothing is ahead of it: no thread switch (and a
synchronous call gets a shared, completed Work: no Work made per call).
CUDA tensors are enqueued on the caller's current stream instead (code path not yet run on
a GPU). Work objects stay referenced until well after they complete (the last _KEEP_DONE
calls): torch 1.13 calls the Python methods of a Work through its C++ handle, and a Work
whose Python side was collected falls back to c10d's base wait(), which never returns
(DDP's constructor hangs there).
"""
import _thread
import atexit
import collections
import queue
import sys
import threading
import weakref
from datetime import timedelta

import torch
import torch.distributed as dist

import weft
from weft._dtypes import from_torch, torch_dtypes
from weft._errors import check as _check_result
from weft._lib import lib as _L

__all__ = ["ProcessGroupWeft", "create_process_group", "BACKEND"]
BACKEND = "weft"
_KEEP_DONE = 4096  # completed Work objects kept referenced (see the module's note)

_R = dist.ReduceOp
_OPS = [(_R.SUM, weft.SUM), (_R.AVG, weft.AVG), (_R.MIN, weft.MIN), (_R.MAX, weft.MAX),
        (_R.PRODUCT, weft.PROD)]
_SUPPORTED_OPS = "SUM, AVG, MIN, MAX and PRODUCT"
_SUPPORTED_DTYPES = ("int8, uint8, int32, int64, float16, bfloat16, float32 and float64 "
                     "(uint32/uint64 where torch has them)")


_HOST_DTYPES = torch_dtypes()  # for the hot path: a dict lookup, no call


class Unsupported(weft.UnsupportedError, RuntimeError):
    """A call the "weft" backend cannot serve; the message says what it supports."""

    def __init__(self, what):
        super().__init__(5, what, "torch.distributed backend weft")


def _op_by_hash():
    """The weft op of each torch ReduceOp by hash(): torch 1.13's ReduceOp hashes to its
    RedOpType, one cheap call on every all_reduce. Used only if each op torch has hashes
    apart from the others, the same way each time it is read back from an options object."""
    table, seen = {}, set()
    weft_of = dict(_OPS)
    for name in ("SUM", "AVG", "MIN", "MAX", "PRODUCT", "BAND", "BOR", "BXOR"):
        t = getattr(_R, name, None)
        if t is None:
            continue
        try:
            o = dist.AllreduceOptions()
            o.reduceOp = t
            k = hash(o.reduceOp)
            if k != hash(o.reduceOp) or k in seen:
                return {}
        except TypeError:
            return {}
        seen.add(k)
        if name in ("SUM", "AVG", "MIN", "MAX", "PRODUCT"):
            table[k] = weft_of[t]
    return table


_OP_BY_HASH = _op_by_hash()


def _weft_op(op, call):
    w = _OP_BY_HASH.get(hash(op))
    if w is not None:
        return w
    for t, w in _OPS:
        if op == t:
            return w
    if op == _R.PREMUL_SUM:
        raise Unsupported("%s: ReduceOp.PREMUL_SUM (premultiplied sum) is not implemented: "
                          "scale the tensor, then all_reduce with SUM; supported ops are %s" %
                          (call, _SUPPORTED_OPS))
    raise Unsupported("%s: reduce op %s is not supported; supported ops are %s" %
                      (call, getattr(op, "op", op), _SUPPORTED_OPS))


def _check(tensors, call):
    """Every tensor dense, contiguous, of a Weft dtype, all on one device (cpu or cuda)."""
    if len(tensors) == 1:  # the common case, kept short: it is on every call's path
        t = tensors[0]
        if isinstance(t, torch.Tensor) and t.layout == torch.strided and \
                from_torch(t.dtype) is not None and t.is_contiguous():
            d = t.device
            if d.type in ("cpu", "cuda"):
                return d
    devices = set()
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            raise Unsupported("%s: expected tensors, got %s" % (call, type(t).__name__))
        if t.layout != torch.strided:
            raise Unsupported("%s: %s tensors are not supported; the weft backend takes dense "
                              "(strided) tensors" % (call, t.layout))
        if from_torch(t.dtype) is None:
            raise Unsupported("%s: dtype %s is not supported; the weft backend takes %s" %
                              (call, t.dtype, _SUPPORTED_DTYPES))
        if t.device.type not in ("cpu", "cuda"):
            raise Unsupported("%s: tensors on %s are not supported; the weft backend takes CPU "
                              "or CUDA tensors" % (call, t.device))
        if not t.is_contiguous():
            raise Unsupported("%s: non-contiguous tensors are not supported; call "
                              ".contiguous() first" % call)
        devices.add(t.device)
    if len(devices) > 1:
        raise Unsupported("%s: tensors on mixed devices (%s); the weft backend takes all "
                          "tensors of a call on one device" %
                          (call, ", ".join(sorted(str(d) for d in devices))))
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        raise Unsupported("%s: tensors of mixed dtypes (%s)" %
                          (call, ", ".join(sorted(str(d) for d in dtypes))))
    return next(iter(devices)) if devices else torch.device("cpu")


def _one(tensors, call):
    if len(tensors) != 1:
        raise Unsupported("%s: %d tensors in one call; the weft backend takes one tensor per "
                          "process (one device per rank)" % (call, len(tensors)))
    return tensors[0]


def _weak(x):
    if isinstance(x, list):
        return [_weak(i) for i in x]
    return x if isinstance(x, weakref.ref) else weakref.ref(x)


def _strong(x):
    if isinstance(x, list):
        return [_strong(i) for i in x]
    if not isinstance(x, weakref.ref):
        return x
    t = x()
    if t is not None and hasattr(t, "_fix_weakref"):
        t._fix_weakref()  # torch 1.13 asks for it after a weak reference is followed
    return t


_WorkBase = getattr(dist, "_Work", None) or torch._C._distributed_c10d.Work


class _Work(_WorkBase):
    """One call of a ProcessGroupWeft: run on its worker, by wait(), or at once, then
    complete. Completion is a plain lock released once (cheaper to make than an Event)."""

    def __init__(self, pg, fn, result, call):
        super().__init__()
        self._runner = pg._runner
        self._fn = fn
        self._result = result
        self._call = call
        self._seq = -1
        self._taken = False
        self._completed = False
        self._exc = None
        self._fut = None  # made by get_future() only: most calls are never asked for one
        self._futlock = pg._futlock
        self._gate = _thread.allocate_lock()
        self._gate.acquire()

    def _run(self):
        try:
            self._fn()
        except BaseException as e:  # noqa: B036 - handed to the waiter, not swallowed
            self._exc = e
        self._fn = None
        with self._futlock:
            self._completed = True
            fut = self._fut
        if fut is not None:
            self._settle(fut)
        # The group keeps this object referenced for a while (the module's note), but not
        # the caller's tensors: a future asked for already holds them.
        self._result = _weak(self._result)
        self._gate.release()

    def _settle(self, fut):
        if self._exc is None:
            fut.set_result(_strong(self._result))
        else:
            fut.set_exception(self._exc)

    def wait(self, timeout=None):
        if not self._completed:
            self._runner.try_run(self)
            secs = -1
            if isinstance(timeout, timedelta) and timeout != timedelta(0) and \
                    timeout.total_seconds() < 1e8:
                secs = timeout.total_seconds()
            if not self._gate.acquire(timeout=secs):
                raise RuntimeError("weft: %s did not complete within %s" % (self._call, timeout))
            self._gate.release()
        if self._exc is not None:
            raise self._exc
        return True

    def is_completed(self):
        return self._completed

    def is_success(self):
        return self._completed and self._exc is None

    def exception(self):
        return self._exc

    def result(self):
        return _strong(self._result)

    def get_future(self):
        with self._futlock:
            if self._fut is not None:
                return self._fut
            fut = self._fut = torch.futures.Future()
            done = self._completed
        if done:
            self._settle(fut)
        return fut

    def synchronize(self):
        pass  # CUDA work was enqueued on the caller's current stream: nothing to join


class _Done(_WorkBase):
    """What a synchronous call returns when it ran at once on the caller's thread: complete
    and successful (a failure was raised instead). One object serves every such call: the
    caller only waits on it, and sparing a Work per call is most of a small call's cost."""

    def wait(self, timeout=None):
        return True

    def is_completed(self):
        return True

    def is_success(self):
        return True

    def exception(self):
        return None

    def result(self):
        return []

    def get_future(self):
        fut = torch.futures.Future()
        fut.set_result([])
        return fut

    def synchronize(self):
        pass


_DONE = _Done()
_BUSY = object()  # _Runner.call_now could not run the call at once


class _Runner:
    """Runs a group's calls one at a time in submission order: on a daemon thread, or on the
    calling thread when the call is next and nothing runs (a synchronous call, or wait() on
    a call the worker has not started), which spares it two thread switches."""

    def __init__(self, name):
        self._q = queue.SimpleQueue()
        self._mu = _thread.allocate_lock()    # submission order
        self._exec = _thread.allocate_lock()  # held while a call runs
        self._submitted = 0
        self._next = 0  # sequence number of the next call to run
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _run_locked(self, work):
        """With _exec held: runs work if it is next and not yet taken."""
        if work._taken or work._seq != self._next:
            return False
        work._taken = True
        try:
            work._run()
        finally:
            self._next += 1
        return True

    def submit(self, work):
        with self._mu:
            if self._closed:
                raise RuntimeError("weft: the process group was destroyed")
            work._seq = self._submitted
            self._submitted += 1
            self._q.put(work)

    def call_now(self, fn, *args):
        """fn(*args) on this thread if no call is queued or running: its result (or its
        exception); _BUSY if it could not run."""
        with self._mu:  # no new call while it runs
            if self._closed or self._next != self._submitted:
                return _BUSY  # a call is queued or running (_next moves once it is done)
            self._submitted += 1
            try:
                return fn(*args)
            finally:
                self._next += 1

    def try_run(self, work):
        if self._exec.acquire(False):
            try:
                self._run_locked(work)
            finally:
                self._exec.release()

    def _loop(self):
        while True:
            w = self._q.get()
            if w is None:
                return
            if w._taken:
                continue
            with self._exec:
                self._run_locked(w)

    def close(self, timeout=None):
        with self._mu:
            if not self._closed:
                self._closed = True
                self._q.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


# Workers still running when the interpreter exits are daemon threads, which CPython ends with
# pthread_exit once it finalizes; a C++ frame on such a thread (torch's futures and DDP's
# callbacks run on it) then ends the process in std::terminate ("terminate called without an
# active exception", seen after DDP runs under srun). So every worker is stopped at exit,
# while the interpreter is whole; a call still running gets 5 s to finish.
_runners = weakref.WeakSet()


@atexit.register
def _stop_runners():
    for r in list(_runners):
        r.close(timeout=5)


def _sync_caller(depth=3):
    """Whether the torch.distributed function that called us has async_op=False: it will
    wait at once, so the call may as well run on this thread. C++ callers (DDP) and the
    functions without async_op (send, recv) go to the worker."""
    f = sys._getframe(depth)  # 3: _sync_caller <- _submit <- the group's method <- torch's
    if f.f_code.co_filename.endswith("distributed_c10d.py"):
        return f.f_locals.get("async_op") is False
    return False


class ProcessGroupWeft(dist.ProcessGroup):
    """A torch.distributed process group over a weft.Comm."""

    def __init__(self, store, rank, size, timeout=None, comm=None):
        super().__init__(rank, size)
        if comm is None:
            key = "weft/unique_id"
            if rank == 0:
                uid = weft.get_unique_id()
                store.set(key, uid)
            else:
                uid = bytes(store.get(key))
            comm = weft.Comm(unique_id=uid, rank=rank, nranks=size)
        self.comm = comm
        self._runner = _Runner("weft-pg-r%d" % rank)
        _runners.add(self._runner)
        self._futlock = _thread.allocate_lock()
        self._recent = collections.deque(maxlen=_KEEP_DONE)  # see the module's note

    def getBackendName(self):  # noqa: N802 (torch's name)
        return BACKEND

    def name(self):
        return BACKEND

    # ---- plumbing -----------------------------------------------------------------------
    def _submit(self, call, tensors, fn, result):
        device = _check(tensors, call)
        if device.type == "cpu" and _sync_caller() and self._runner.call_now(fn) is not _BUSY:
            return _DONE
        work = _Work(self, fn, result, call)
        self._recent.append(work)
        if device.type == "cuda":
            work._run()  # enqueued on the caller's current stream: complete for the host
        else:
            self._runner.submit(work)
        return work

    def shutdown(self):
        """Waits for queued calls, stops the worker and destroys the communicator."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None
            self.comm.destroy()

    # ---- collectives --------------------------------------------------------------------
    def allreduce(self, tensors, opts=None):
        call = "all_reduce"
        # The hot path (DDP, synchronous calls): one dense host tensor of a Weft dtype and an
        # op of the table, straight to the C call. Every step counts at 8 bytes: no helpers.
        t = tensors[0] if len(tensors) == 1 else None
        dt = _HOST_DTYPES.get(t.dtype) if t is not None else None
        op = _OP_BY_HASH.get(hash(opts.reduceOp)) if opts is not None else weft.SUM
        h = self.comm._h
        if dt is None or op is None or not h or not t.is_cpu or \
                t.layout is not torch.strided or not t.is_contiguous():
            t = _one(tensors, call)
            op = _weft_op(opts.reduceOp if opts is not None else _R.SUM, call)
            return self._submit(call, [t], lambda: self.comm.allreduce(t, op=op), [t])
        p, n = t.data_ptr(), t.numel()
        if _sync_caller(2):
            rc = self._runner.call_now(_L.weft_allreduce, p, p, n, dt, op, h, None)
            if rc is not _BUSY:
                if rc:
                    _check_result(rc, "weft_allreduce")
                return _DONE

        def fn():
            _check_result(_L.weft_allreduce(p, p, n, dt, op, h, None), "weft_allreduce")
        work = _Work(self, fn, [t], call)
        self._recent.append(work)
        self._runner.submit(work)
        return work

    def allreduce_coalesced(self, tensors, opts=None):
        call = "all_reduce_coalesced"
        op = _weft_op(opts.reduceOp if opts is not None else _R.SUM, call)
        ts = list(tensors)

        def fn():
            for t in ts:
                self.comm.allreduce(t, op=op)
        return self._submit(call, ts, fn, ts)

    def broadcast(self, tensors, opts=None):
        call = "broadcast"
        t = _one(tensors, call)
        root = opts.rootRank if opts is not None else 0
        return self._submit(call, [t], lambda: self.comm.broadcast(t, root=root), [t])

    def reduce(self, tensors, opts=None):
        call = "reduce"
        t = _one(tensors, call)
        op = _weft_op(opts.reduceOp if opts is not None else _R.SUM, call)
        root = opts.rootRank if opts is not None else 0
        return self._submit(call, [t], lambda: self.comm.reduce(t, op=op, root=root), [t])

    def allgather(self, output_tensors, input_tensors, opts=None):
        call = "all_gather"
        t = _one(input_tensors, call)
        outs = _one(output_tensors, call)
        if len(outs) != self.size() or any(o.numel() != t.numel() for o in outs):
            raise ValueError("weft: all_gather needs %d output tensors of %d elements" %
                             (self.size(), t.numel()))

        def fn():
            flat = torch.empty(self.size() * t.numel(), dtype=t.dtype, device=t.device)
            self.comm.allgather(t, flat)
            for i, o in enumerate(outs):
                o.copy_(flat[i * t.numel():(i + 1) * t.numel()].view_as(o))
        return self._submit(call, [t] + list(outs), fn, [list(outs)])

    def _allgather_base(self, output, input, opts=None):
        call = "_all_gather_base"
        if output.numel() != self.size() * input.numel():
            raise ValueError("weft: _all_gather_base needs an output of %d x %d elements" %
                             (self.size(), input.numel()))
        return self._submit(call, [output, input], lambda: self.comm.allgather(input, output),
                            [output])

    def reduce_scatter(self, output_tensors, input_tensors, opts=None):
        call = "reduce_scatter"
        out = _one(output_tensors, call)
        ins = _one(input_tensors, call)
        op = _weft_op(opts.reduceOp if opts is not None else _R.SUM, call)
        if len(ins) != self.size() or any(i.numel() != out.numel() for i in ins):
            raise ValueError("weft: reduce_scatter needs %d input tensors of %d elements" %
                             (self.size(), out.numel()))

        def fn():
            flat = torch.cat([i.reshape(-1) for i in ins])
            self.comm.reduce_scatter(flat, out, op=op)
        return self._submit(call, [out] + list(ins), fn, [out])

    def _reduce_scatter_base(self, output, input, opts=None):
        call = "_reduce_scatter_base"
        op = _weft_op(opts.reduceOp if opts is not None else _R.SUM, call)
        return self._submit(call, [output, input],
                            lambda: self.comm.reduce_scatter(input, output, op=op), [output])

    def alltoall_base(self, output, input, output_split_sizes, input_split_sizes, opts=None):
        call = "all_to_all_single"
        n = self.size()
        if not output_split_sizes and not input_split_sizes:
            return self._submit(call, [output, input],
                                lambda: self.comm.alltoall(input, output), [output])
        # Uneven splits (along dim 0): every pair's block as a send and a receive, posted
        # together in one Weft group.
        row_in = input.numel() // max(input.size(0), 1) if input.dim() else 1
        row_out = output.numel() // max(output.size(0), 1) if output.dim() else 1
        ins = list(input_split_sizes) or [input.size(0) // n] * n
        outs = list(output_split_sizes) or [output.size(0) // n] * n
        if len(ins) != n or len(outs) != n or sum(ins) != input.size(0) or \
                sum(outs) != output.size(0):
            raise ValueError("weft: all_to_all_single: split sizes must have %d entries that "
                             "add up to dim 0 of the tensors" % n)
        fi, fo = input.view(-1), output.view(-1)

        def fn():
            oi = oo = 0
            with weft.group():
                for p in range(n):
                    if ins[p]:
                        self.comm.send(fi[oi:oi + ins[p] * row_in], p)
                    if outs[p]:
                        self.comm.recv(fo[oo:oo + outs[p] * row_out], p)
                    oi += ins[p] * row_in
                    oo += outs[p] * row_out
        return self._submit(call, [output, input], fn, [output])

    def alltoall(self, output_tensors, input_tensors, opts=None):
        call = "all_to_all"
        n = self.size()
        if len(output_tensors) != n or len(input_tensors) != n:
            raise ValueError("weft: all_to_all needs %d input and %d output tensors" % (n, n))

        def fn():
            with weft.group():
                for p in range(n):
                    if input_tensors[p].numel():
                        self.comm.send(input_tensors[p], p)
                    if output_tensors[p].numel():
                        self.comm.recv(output_tensors[p], p)
        return self._submit(call, list(output_tensors) + list(input_tensors), fn,
                            list(output_tensors))

    def gather(self, output_tensors, input_tensors, opts=None):
        call = "gather"
        t = _one(input_tensors, call)
        root = opts.rootRank
        outs = _one(output_tensors, call) if self.rank() == root else []

        def fn():
            with weft.group():
                if self.rank() != root:
                    self.comm.send(t, root)
                else:
                    for p in range(self.size()):
                        if p != root:
                            self.comm.recv(outs[p], p)
            if self.rank() == root:
                outs[root].copy_(t)
        return self._submit(call, [t] + list(outs), fn, [list(outs)])

    def scatter(self, output_tensors, input_tensors, opts=None):
        call = "scatter"
        t = _one(output_tensors, call)
        root = opts.rootRank
        ins = _one(input_tensors, call) if self.rank() == root else []

        def fn():
            with weft.group():
                if self.rank() != root:
                    self.comm.recv(t, root)
                else:
                    for p in range(self.size()):
                        if p != root:
                            self.comm.send(ins[p], p)
            if self.rank() == root:
                t.copy_(ins[root])
        return self._submit(call, [t] + list(ins), fn, [t])

    def send(self, tensors, dst, tag=0):
        call = "send"
        t = _one(tensors, call)
        return self._submit(call, [t], lambda: self.comm.send(t, dst), [t])

    def recv(self, tensors, src, tag=0):
        call = "recv"
        t = _one(tensors, call)
        return self._submit(call, [t], lambda: self.comm.recv(t, src), [t])

    def recv_anysource(self, tensors, tag=0):
        raise Unsupported("recv from any source is not supported: the weft backend needs the "
                          "source rank (dist.recv(tensor, src=...))")

    def barrier(self, opts=None):
        return self._submit("barrier", [], self.comm.barrier, [])

    def monitored_barrier(self, opts=None, wait_all_ranks=False):
        self.barrier().wait()


_launcher_comm = []  # the weft:// rendezvous's Comm, for the first group of its shape


def create_process_group(store, rank, size, timeout):
    """The creator torch calls for init_process_group("weft") and new_group(backend="weft")."""
    if _launcher_comm and _launcher_comm[0].rank == rank and _launcher_comm[0].size == size:
        return ProcessGroupWeft(store, rank, size, timeout, comm=_launcher_comm.pop())
    return ProcessGroupWeft(store, rank, size, timeout)


def _weft_rendezvous(url, timeout=timedelta(minutes=30), **kwargs):
    """init_method="weft://": ranks from the launcher's environment (weft-run, srun,
    mpirun/mpiexec; what weft.Comm() reads). Rank 0 starts torch's TCPStore on a free port
    and tells the others through that Comm, which the "weft" group then reuses."""
    import socket

    comm = weft.Comm()
    rank, size = comm.rank, comm.size
    host = bytearray(256)
    port = torch.zeros(1, dtype=torch.int64)
    store = None
    if rank == 0:
        name = (__import__("os").environ.get("MASTER_ADDR") or socket.gethostname()).encode()
        store = dist.TCPStore(name.decode(), 0, size, True, timeout,
                              wait_for_workers=False)
        host[:len(name)] = name
        port[0] = store.port
    comm.broadcast(host, root=0)
    comm.broadcast(port, root=0)
    if rank != 0:
        store = dist.TCPStore(bytes(host).rstrip(b"\0").decode(), int(port[0]), size, False,
                              timeout)
    _launcher_comm[:] = [comm]
    yield store, rank, size
    raise RuntimeError("weft:// rendezvous cannot be used again in this process")


def _register():
    if BACKEND.upper() not in getattr(dist.Backend, "_plugins", {}):
        dist.Backend.register_backend(BACKEND, create_process_group)
    from torch.distributed.rendezvous import register_rendezvous_handler

    try:
        register_rendezvous_handler("weft", _weft_rendezvous)
    except (RuntimeError, ValueError):
        pass  # already registered (a reload)


_register()
