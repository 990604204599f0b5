"""comm_check.py - the weft Python package under a launcher (weft-run -n N python3
comm_check.py): every collective and send/recv, for every dtype and op, checked exactly,
on plain buffers (array.array, bytearray, memoryview; no third-party package needed) and on
NumPy arrays when NumPy is there; a Comm from a unique id; the error cases; and another
Python thread running while a call blocks (the GIL released). Prints "N checks passed".
"""
import array
import struct
import sys
import threading
import time

import weft

comm = weft.Comm()
R, N = comm.rank, comm.size
checks = 0
D = weft.Dtype


def check(cond, what):
    global checks
    if not cond:
        print("FAIL rank %d: %s" % (R, what), flush=True)
        comm.abort()
        sys.exit(1)
    checks += 1


# Per dtype: struct format for packing, and whether it is a float.
FMT = {D.INT8: "b", D.UINT8: "B", D.INT32: "i", D.UINT32: "I", D.INT64: "q", D.UINT64: "Q",
       D.FLOAT16: "e", D.BFLOAT16: None, D.FLOAT32: "f", D.FLOAT64: "d"}


def pack(dtype, values):
    """A bytearray of `values` in `dtype` (bfloat16: the top half of each float32)."""
    if dtype == D.BFLOAT16:
        return bytearray(b"".join(struct.pack("<f", float(v))[2:] for v in values))
    return bytearray(struct.pack("<%d%s" % (len(values), FMT[dtype]), *values))


def unpack(dtype, buf):
    buf = bytes(buf)
    if dtype == D.BFLOAT16:
        return [struct.unpack("<f", b"\0\0" + buf[i:i + 2])[0] for i in range(0, len(buf), 2)]
    return list(struct.unpack("<%d%s" % (len(buf) // dtype.itemsize, FMT[dtype]), buf))


def vals(rank, count, salt=0):
    """Small integers: exact in every dtype, sums and products included (up to 4 ranks)."""
    return [((rank * 7 + i * 3 + salt) % 5) + 1 for i in range(count)]


def reduce_ref(op, per_rank, dtype):
    out = []
    for col in zip(*per_rank):
        if op == weft.SUM:
            v = sum(col)
        elif op == weft.PROD:
            v = 1
            for x in col:
                v *= x
        elif op == weft.MIN:
            v = min(col)
        elif op == weft.MAX:
            v = max(col)
        else:
            v = sum(col) / N
            if dtype in (D.INT8, D.UINT8, D.INT32, D.UINT32, D.INT64, D.UINT64):
                v = int(v)  # truncation toward zero; all values are positive
        out.append(v)
    return out


def close(dtype, got, want):
    """Exact, but for an average of floats (a sum / N that may round): within the dtype's
    rounding."""
    if any(isinstance(w, float) and w != int(w) for w in want):
        eps = {D.FLOAT16: 2 ** -10, D.BFLOAT16: 2 ** -7, D.FLOAT32: 2 ** -22}.get(dtype, 1e-15)
        return len(got) == len(want) and all(abs(g - w) <= abs(w) * eps
                                             for g, w in zip(got, want))
    return got == want


for dtype in D:
    name = dtype.name.lower()
    for count in (0, 1, 7, 1000):
        for op in weft.Op:
            # allreduce, out of place and in place
            mine = pack(dtype, vals(R, count))
            out = bytearray(len(mine))
            comm.allreduce(memoryview(mine), out, op=op, dtype=dtype)
            want = reduce_ref(op, [vals(r, count) for r in range(N)], dtype)
            check(close(dtype, unpack(dtype, out), want), "allreduce %s %s n=%d" %
                  (name, op.name, count))
            comm.allreduce(mine, op=op, dtype=dtype)
            check(mine == out, "allreduce in place %s %s" % (name, op.name))
            # reduce to the last rank
            mine = pack(dtype, vals(R, count, 1))
            out = bytearray(len(mine))
            comm.reduce(mine, out, op=op, root=N - 1, dtype=dtype)
            if R == N - 1:
                want = reduce_ref(op, [vals(r, count, 1) for r in range(N)], dtype)
                check(close(dtype, unpack(dtype, out), want), "reduce %s %s n=%d" %
                      (name, op.name, count))
            # reduce_scatter: rank r gets the reduction of block r
            send = pack(dtype, vals(R, count * N, 2))
            out = bytearray(count * dtype.itemsize)
            comm.reduce_scatter(send, out, op=op, dtype=dtype)
            full = reduce_ref(op, [vals(r, count * N, 2) for r in range(N)], dtype)
            check(close(dtype, unpack(dtype, out), full[R * count:(R + 1) * count]),
                  "reduce_scatter %s %s n=%d" % (name, op.name, count))
        # broadcast from rank 1 % N
        root = 1 % N
        buf = pack(dtype, vals(R, count, 3))
        comm.broadcast(buf, root=root, dtype=dtype)
        check(unpack(dtype, buf) == unpack(dtype, pack(dtype, vals(root, count, 3))),
              "broadcast %s n=%d" % (name, count))
        # allgather, alltoall
        out = bytearray(N * count * dtype.itemsize)
        comm.allgather(pack(dtype, vals(R, count, 4)), out, dtype=dtype)
        check(unpack(dtype, out) == sum((unpack(dtype, pack(dtype, vals(r, count, 4)))
                                         for r in range(N)), []), "allgather %s" % name)
        send = pack(dtype, [(R * N + p) % 100 for p in range(N) for _ in range(count)])
        out = bytearray(len(send))
        comm.alltoall(send, out, dtype=dtype)
        check(unpack(dtype, out) == [float((p * N + R) % 100) if FMT[dtype] in ("e", "f", "d",
                                     None) else (p * N + R) % 100
                                     for p in range(N) for _ in range(count)],
              "alltoall %s n=%d" % (name, count))
    # send/recv around the ring, inside a group so that nothing waits
    a = pack(dtype, vals(R, 33, 5))
    b = bytearray(len(a))
    with weft.group():
        comm.send(a, (R + 1) % N, dtype=dtype)
        comm.recv(b, (R - 1) % N, dtype=dtype)
    check(b == pack(dtype, vals((R - 1) % N, 33, 5)), "send/recv %s" % name)

# Formats the buffer protocol names itself: no dtype= needed.
for code, dt in (("b", D.INT8), ("B", D.UINT8), ("i", D.INT32), ("I", D.UINT32), ("q", D.INT64),
                 ("Q", D.UINT64), ("f", D.FLOAT32), ("d", D.FLOAT64)):
    a = array.array(code, [R + 1] * 5)
    comm.allreduce(a)
    check(list(a) == [N * (N + 1) // 2] * 5, "array.array(%r) allreduce" % code)
h = bytearray(struct.pack("5e", 9, R + 0.5, 1, 2, 9))
comm.allreduce(memoryview(h)[2:8], op=weft.MAX, dtype=weft.FLOAT16)  # a slice: the offset
check(struct.unpack("5e", h) == (9.0, N - 0.5, 1.0, 2.0, 9.0), "memoryview slice allreduce")
comm.barrier()

# NumPy, every dtype NumPy has.
try:
    import numpy as np
except ImportError:
    if R == 0:
        print("# skip - numpy arrays: numpy is not installed for %s" % sys.executable)
    np = None
if np is not None:
    for name in ("int8", "uint8", "int32", "uint32", "int64", "uint64", "float16", "float32",
                 "float64"):
        x = np.arange(10, dtype=name) + R
        y = np.empty_like(x)
        comm.allreduce(x, y)
        check(np.array_equal(y, (np.arange(10) * N + N * (N - 1) // 2).astype(name)),
              "numpy %s allreduce" % name)
        g = np.empty((N, 10), dtype=name)
        comm.allgather(x, g)
        check(all(np.array_equal(g[r], np.arange(10, dtype=name) + r) for r in range(N)),
              "numpy %s allgather" % name)
    try:
        comm.allreduce(np.arange(10.0)[::2])
        check(False, "a strided numpy array was accepted")
    except weft.InvalidArgError as e:
        check("contiguous" in str(e), "strided array refused: %s" % e)

# A second Comm from a unique id made on rank 0 and passed over the first Comm; split.
uid = bytearray(weft.get_unique_id() if R == 0 else bytes(128))
comm.broadcast(uid, root=0)
c2 = weft.Comm(unique_id=bytes(uid), rank=N - 1 - R, nranks=N)
check(c2.rank == N - 1 - R and c2.size == N, "Comm from unique id: rank %d" % c2.rank)
x = array.array("q", [c2.rank])
c2.allreduce(x)
check(x[0] == N * (N - 1) // 2, "allreduce on the unique-id Comm")
sub = comm.split(R % 2, key=R)
x = array.array("i", [1])
sub.allreduce(x)
check(x[0] == len(range(R % 2, N, 2)), "split: %d ranks with color %d" % (x[0], R % 2))
sub.destroy()
c2.destroy()

# Errors: Python-side argument checks and the library's own, with weft_last_error's text.
for fn, kind, text in (
        (lambda: comm.allreduce(b"abc"), weft.InvalidArgError, "writable"),
        (lambda: comm.allreduce(bytearray(4), bytearray(8)), weft.InvalidArgError, "elements"),
        (lambda: comm.allreduce(bytearray(6), dtype=weft.FLOAT32), weft.InvalidArgError,
         "whole number"),
        (lambda: comm.allgather(bytearray(4), bytearray(4)), weft.InvalidArgError, "ranks"),
        (lambda: comm.send(bytearray(4), N + 5), weft.InvalidArgError, "peer %d" % (N + 5)),
        (lambda: comm.broadcast(bytearray(4), root=-1), weft.InvalidArgError, "root"),
        (lambda: comm.allreduce(object()), weft.InvalidArgError, "Weft takes"),
        (lambda: weft.Comm(unique_id=b"short", rank=0, nranks=2), weft.InvalidArgError,
         "unique_id"),
):
    try:
        fn()
        check(False, "no error raised (wanted %s)" % kind.__name__)
    except weft.Error as e:
        check(isinstance(e, kind) and text in str(e) and e.code == kind.code,
              "error %s with %r: got %s: %s" % (kind.__name__, text, type(e).__name__, e))
comm.barrier()

# The GIL is released during a blocking call: rank 0 waits in recv for rank 1, which sends
# only after 0.5 s, while a thread of rank 0 counts.
if N >= 2:
    ticks = [0]
    stop = threading.Event()

    def counter():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    buf = bytearray(8)
    if R == 0:
        th = threading.Thread(target=counter)
        th.start()
        t0 = time.monotonic()
        comm.recv(buf, 1)
        waited = time.monotonic() - t0
        stop.set()
        th.join()
        check(waited > 0.3 and ticks[0] >= 50, "a thread ran %d times while recv blocked %.2f s"
              % (ticks[0], waited))
    elif R == 1:
        time.sleep(0.5)
        comm.send(b"12345678", 0)
    comm.barrier()

comm.destroy()
print("rank %d: comm_check (%s, %d ranks, %s): %d checks passed" %
      (R, sys.version.split()[0], N, weft.library_path, checks))
