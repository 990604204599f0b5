"""weft.Comm: a communicator, and every collective and point-to-point call on it."""
import contextlib
import ctypes

from . import _errors, _lib
from ._buffers import Buffer
from ._dtypes import Op

_L = _lib.lib


def get_unique_id():
    """A new unique id (bytes): create it on one rank (this process then serves the
    rendezvous) and pass it to every rank's Comm(unique_id=...)."""
    uid = _lib.UniqueIdStruct()
    _errors.check(_L.weft_get_unique_id(ctypes.byref(uid)), "weft_get_unique_id")
    return bytes(uid)  # not uid.internal: a char array field stops at its first NUL


def version():
    """The library's version as (major, minor, patch)."""
    v = ctypes.c_int()
    _errors.check(_L.weft_get_version(ctypes.byref(v)), "weft_get_version")
    return (v.value // 10000, v.value // 100 % 100, v.value % 100)


@contextlib.contextmanager
def group():
    """Calls made in the block (on this thread) run together at its end, so that a send/recv
    exchange cannot deadlock: with weft.group(): comm.send(a, 1); comm.recv(b, 1)."""
    _errors.check(_L.weft_group_start(), "weft_group_start")
    try:
        yield
    finally:
        _errors.check(_L.weft_group_end(), "weft_group_end")


def _arg(call, msg):
    return _errors.InvalidArgError(1, msg, call)


class _Bufs:
    """Buffers of one call, released when it ends."""

    def __init__(self):
        self.held = []

    def get(self, obj, call, writable, dtype):
        b = Buffer(obj, call, writable, dtype)
        self.held.append(b)
        return b

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for b in self.held:
            b.release()


def _same_kind(call, a, b):
    if a.dtype != b.dtype:
        raise _arg(call, "send and receive buffers differ in dtype (%s and %s)" %
                   (a.dtype.name.lower(), b.dtype.name.lower()))
    if a.cuda != b.cuda:
        raise _arg(call, "send and receive buffers must both be on the host or both on a GPU")


class Comm:
    """A Weft communicator.

    Comm() reads the launcher's environment (weft-run, srun, mpirun/mpiexec, torchrun-style
    RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT); Comm(unique_id=uid, rank=r, nranks=n) joins the
    ranks that share uid (from weft.get_unique_id() on one of them). Every call blocks until
    done for host buffers (the GIL is released meanwhile); for CUDA tensors it is enqueued on
    the current stream. recvbuf=None means in place where the C API allows it.
    """

    def __init__(self, unique_id=None, rank=None, nranks=None, _handle=None):
        self._h = ctypes.c_void_p()
        if _handle is not None:
            self._h = _handle
        elif unique_id is None:
            if rank is not None or nranks is not None:
                raise _arg("weft_comm_init_rank", "rank and nranks need unique_id")
            _errors.check(_L.weft_comm_init_env(ctypes.byref(self._h)), "weft_comm_init_env")
        else:
            uid = bytes(unique_id)
            if len(uid) != _lib.UNIQUE_ID_BYTES or rank is None or nranks is None:
                raise _arg("weft_comm_init_rank", "need unique_id (%d bytes from "
                           "weft.get_unique_id()), rank and nranks" % _lib.UNIQUE_ID_BYTES)
            s = _lib.UniqueIdStruct()
            ctypes.memmove(ctypes.byref(s), uid, len(uid))
            _errors.check(_L.weft_comm_init_rank(ctypes.byref(self._h), int(nranks), s,
                                                 int(rank)), "weft_comm_init_rank")
        self.rank = self._int(_L.weft_comm_rank, "weft_comm_rank")
        self.size = self._int(_L.weft_comm_size, "weft_comm_size")
        self.device = self._int(_L.weft_comm_device, "weft_comm_device")

    def _int(self, fn, call):
        v = ctypes.c_int()
        _errors.check(fn(self._live(call), ctypes.byref(v)), call)
        return v.value

    def _live(self, call):
        if not self._h:
            raise _arg(call, "the communicator was destroyed or aborted")
        return self._h

    def __repr__(self):
        return "weft.Comm(rank=%d, size=%d)" % (self.rank, self.size) if self._h else \
            "weft.Comm(closed)"

    # ---- lifetime -----------------------------------------------------------------------
    def destroy(self):
        """Collective: waits for outstanding work, then frees the communicator."""
        if self._h:
            h, self._h = self._h, ctypes.c_void_p()
            _errors.check(_L.weft_comm_destroy(h), "weft_comm_destroy")

    close = destroy

    def abort(self):
        """Local: stops outstanding work (peers see weft.RemoteError); safe from another
        thread while a call is in flight, which then raises weft.AbortedError."""
        if self._h:
            h, self._h = self._h, ctypes.c_void_p()
            _errors.check(_L.weft_comm_abort(h), "weft_comm_abort")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is None:
            self.destroy()
        else:
            self.abort()  # peers may not reach destroy: do not wait for them

    def async_error(self):
        """The weft.Error subclass of the first error that ended an operation, or None."""
        r = ctypes.c_int()
        _errors.check(_L.weft_comm_get_async_error(self._live("weft_comm_get_async_error"),
                                                   ctypes.byref(r)), "weft_comm_get_async_error")
        return _errors._BY_CODE.get(r.value, _errors.Error) if r.value else None

    def split(self, color, key=0):
        """Collective: ranks with the same color form a new Comm, ordered by key then rank;
        color=None (WEFT_SPLIT_NOCOLOR) gets None."""
        h = ctypes.c_void_p()
        _errors.check(_L.weft_comm_split(self._live("weft_comm_split"),
                                         -1 if color is None else int(color), int(key),
                                         ctypes.byref(h)), "weft_comm_split")
        return Comm(_handle=h) if h else None

    # ---- collectives --------------------------------------------------------------------
    def allreduce(self, sendbuf, recvbuf=None, op=Op.SUM, dtype=None):
        call = "weft_allreduce"
        with _Bufs() as bs:
            s = bs.get(sendbuf, call, recvbuf is None, dtype)
            r = bs.get(recvbuf, call, True, dtype) if recvbuf is not None else s
            _same_kind(call, s, r)
            if r.count != s.count:
                raise _arg(call, "send has %d elements, receive %d" % (s.count, r.count))
            _errors.check(_L.weft_allreduce(s.ptr, r.ptr, s.count, s.dtype, Op(op),
                                            self._live(call), s.stream), call)
        return recvbuf if recvbuf is not None else sendbuf

    def broadcast(self, buf, root=0, recvbuf=None, dtype=None):
        """buf is sent from root; everyone receives into recvbuf, or into buf when None."""
        call = "weft_broadcast"
        with _Bufs() as bs:
            s = bs.get(buf, call, recvbuf is None, dtype)
            r = bs.get(recvbuf, call, True, dtype) if recvbuf is not None else s
            _same_kind(call, s, r)
            if r.count != s.count:
                raise _arg(call, "send has %d elements, receive %d" % (s.count, r.count))
            _errors.check(_L.weft_broadcast(s.ptr, r.ptr, r.count, r.dtype, int(root),
                                            self._live(call), r.stream), call)
        return recvbuf if recvbuf is not None else buf

    def reduce(self, sendbuf, recvbuf=None, op=Op.SUM, root=0, dtype=None):
        """recvbuf (or sendbuf when None) is written on root only."""
        call = "weft_reduce"
        with _Bufs() as bs:
            s = bs.get(sendbuf, call, recvbuf is None, dtype)
            r = bs.get(recvbuf, call, True, dtype) if recvbuf is not None else s
            _same_kind(call, s, r)
            if r.count != s.count:
                raise _arg(call, "send has %d elements, receive %d" % (s.count, r.count))
            _errors.check(_L.weft_reduce(s.ptr, r.ptr, s.count, s.dtype, Op(op), int(root),
                                         self._live(call), s.stream), call)
        return recvbuf if recvbuf is not None else sendbuf

    def allgather(self, sendbuf, recvbuf, dtype=None):
        """recvbuf holds size * len(sendbuf) elements, rank r's at r * len(sendbuf)."""
        call = "weft_allgather"
        with _Bufs() as bs:
            s = bs.get(sendbuf, call, False, dtype)
            r = bs.get(recvbuf, call, True, dtype)
            _same_kind(call, s, r)
            if r.count != s.count * self.size:
                raise _arg(call, "receive buffer has %d elements, need %d x %d ranks" %
                           (r.count, s.count, self.size))
            _errors.check(_L.weft_allgather(s.ptr, r.ptr, s.count, s.dtype, self._live(call),
                                            s.stream), call)
        return recvbuf

    def reduce_scatter(self, sendbuf, recvbuf, op=Op.SUM, dtype=None):
        """sendbuf holds size * len(recvbuf) elements; rank r gets the reduction of block r."""
        call = "weft_reduce_scatter"
        with _Bufs() as bs:
            s = bs.get(sendbuf, call, False, dtype)
            r = bs.get(recvbuf, call, True, dtype)
            _same_kind(call, s, r)
            if s.count != r.count * self.size:
                raise _arg(call, "send buffer has %d elements, need %d x %d ranks" %
                           (s.count, r.count, self.size))
            _errors.check(_L.weft_reduce_scatter(s.ptr, r.ptr, r.count, s.dtype, Op(op),
                                                 self._live(call), s.stream), call)
        return recvbuf

    def alltoall(self, sendbuf, recvbuf, dtype=None):
        """Block p of sendbuf goes to rank p; block p of recvbuf comes from rank p."""
        call = "weft_alltoall"
        with _Bufs() as bs:
            s = bs.get(sendbuf, call, False, dtype)
            r = bs.get(recvbuf, call, True, dtype)
            _same_kind(call, s, r)
            if s.count != r.count or s.count % self.size:
                raise _arg(call, "send (%d) and receive (%d) elements must be equal and a "
                           "multiple of %d ranks" % (s.count, r.count, self.size))
            _errors.check(_L.weft_alltoall(s.ptr, r.ptr, s.count // self.size, s.dtype,
                                           self._live(call), s.stream), call)
        return recvbuf

    def send(self, buf, peer, dtype=None):
        call = "weft_send"
        with _Bufs() as bs:
            s = bs.get(buf, call, False, dtype)
            _errors.check(_L.weft_send(s.ptr, s.count, s.dtype, int(peer), self._live(call),
                                       s.stream), call)

    def recv(self, buf, peer, dtype=None):
        call = "weft_recv"
        with _Bufs() as bs:
            r = bs.get(buf, call, True, dtype)
            _errors.check(_L.weft_recv(r.ptr, r.count, r.dtype, int(peer), self._live(call),
                                       r.stream), call)
        return buf

    def barrier(self):
        call = "weft_barrier"
        _errors.check(_L.weft_barrier(self._live(call), None), call)
