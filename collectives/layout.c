/*
 * layout.c - which buffers an operation touches on a rank, and how big they are: the one
 * answer that argument checks, stream staging and the device paths share.
 */
#include <stdio.h>

#include "collectives/collectives.h"

bool weft_coll_uses_send(const struct weft_coll_op *op, int rank)
{
    return op->kind != WEFT_COLL_RECV && op->kind != WEFT_COLL_BARRIER &&
           !(op->kind == WEFT_COLL_BROADCAST && rank != op->root);
}

bool weft_coll_uses_recv(const struct weft_coll_op *op, int rank)
{
    return op->kind != WEFT_COLL_SEND && op->kind != WEFT_COLL_BARRIER &&
           !(op->kind == WEFT_COLL_REDUCE && rank != op->root);
}

size_t weft_coll_send_blocks(enum weft_coll_kind kind, int nranks)
{
    return kind == WEFT_COLL_REDUCE_SCATTER || kind == WEFT_COLL_ALLTOALL ? (size_t)nranks : 1;
}

size_t weft_coll_recv_blocks(enum weft_coll_kind kind, int nranks)
{
    return kind == WEFT_COLL_ALLGATHER || kind == WEFT_COLL_ALLTOALL ? (size_t)nranks : 1;
}

size_t weft_coll_send_bytes(const struct weft_coll_op *op, int nranks)
{
    return op->count * weft_dtype_size(op->dtype) * weft_coll_send_blocks(op->kind, nranks);
}

size_t weft_coll_recv_bytes(const struct weft_coll_op *op, int nranks)
{
    return op->count * weft_dtype_size(op->dtype) * weft_coll_recv_blocks(op->kind, nranks);
}

bool weft_coll_reduces(enum weft_coll_kind kind)
{
    return kind == WEFT_COLL_ALLREDUCE || kind == WEFT_COLL_REDUCE ||
           kind == WEFT_COLL_REDUCE_SCATTER;
}

const char *weft_coll_call_name(enum weft_coll_kind kind)
{
    switch (kind) {
    case WEFT_COLL_ALLREDUCE: return "weft_allreduce";
    case WEFT_COLL_BROADCAST: return "weft_broadcast";
    case WEFT_COLL_REDUCE: return "weft_reduce";
    case WEFT_COLL_ALLGATHER: return "weft_allgather";
    case WEFT_COLL_REDUCE_SCATTER: return "weft_reduce_scatter";
    case WEFT_COLL_ALLTOALL: return "weft_alltoall";
    case WEFT_COLL_BARRIER: return "weft_barrier";
    case WEFT_COLL_SEND: return "weft_send";
    case WEFT_COLL_RECV: return "weft_recv";
    case WEFT_COLL_CHECK: return "WEFT_CHECK";
    }
    return "weft_?";
}

/* The one in-place layout each kind supports, in the words of the refusal. */
static const char *supported_in_place(enum weft_coll_kind kind)
{
    switch (kind) {
    case WEFT_COLL_ALLREDUCE:
    case WEFT_COLL_REDUCE:
    case WEFT_COLL_BROADCAST:
        return "in place means sendbuf == recvbuf";
    case WEFT_COLL_ALLGATHER:
        return "in place means sendbuf == recvbuf + rank * count elements";
    case WEFT_COLL_REDUCE_SCATTER:
        return "in place means recvbuf == sendbuf + rank * recvcount elements";
    case WEFT_COLL_ALLTOALL:
        return "alltoall has no in-place form: pass separate buffers";
    default:
        return "the buffers must not overlap";
    }
}

bool weft_coll_layout_ok(const struct weft_coll_op *op, int rank, int nranks, char *why,
                         size_t why_len)
{
    const size_t sbytes = weft_coll_uses_send(op, rank) ? weft_coll_send_bytes(op, nranks) : 0;
    const size_t rbytes = weft_coll_uses_recv(op, rank) ? weft_coll_recv_bytes(op, nranks) : 0;
    /* Addresses as integers: comparing pointers into different objects is undefined. */
    const uintptr_t s = (uintptr_t)op->sendbuf, r = (uintptr_t)op->recvbuf;
    if (!sbytes || !rbytes || s + sbytes <= r || r + rbytes <= s)
        return true;
    const uintptr_t block = op->count * weft_dtype_size(op->dtype);
    bool ok;
    switch (op->kind) {
    case WEFT_COLL_ALLREDUCE:
    case WEFT_COLL_REDUCE:
    case WEFT_COLL_BROADCAST: ok = s == r; break;
    case WEFT_COLL_ALLGATHER: ok = s == r + (uintptr_t)rank * block; break;
    case WEFT_COLL_REDUCE_SCATTER: ok = r == s + (uintptr_t)rank * block; break;
    default: ok = false; break;
    }
    if (!ok && why && why_len)
        snprintf(why, why_len,
                 "sendbuf %p (%zu bytes) and recvbuf %p (%zu bytes) overlap in a layout %s "
                 "does not support (%s)",
                 op->sendbuf, sbytes, op->recvbuf, rbytes, weft_coll_call_name(op->kind),
                 supported_in_place(op->kind));
    return ok;
}

/* The bytes of op's buffer that `rank` uses: sendbuf (recv false) or recvbuf. */
static bool used_range(const struct weft_coll_op *op, int rank, int nranks, bool recv,
                       uintptr_t *at, size_t *bytes)
{
    const bool uses = recv ? weft_coll_uses_recv(op, rank) : weft_coll_uses_send(op, rank);
    *bytes = !uses ? 0 : recv ? weft_coll_recv_bytes(op, nranks) : weft_coll_send_bytes(op, nranks);
    *at = (uintptr_t)(recv ? op->recvbuf : op->sendbuf);
    return *bytes > 0;
}

static bool is_p2p_op(const struct weft_coll_op *op)
{
    return op->kind == WEFT_COLL_SEND || op->kind == WEFT_COLL_RECV;
}

bool weft_coll_group_layout_ok(const struct weft_coll_op *ops, size_t n, int rank, int nranks,
                               char *why, size_t why_len)
{
    /* Sends and receives of a group are all in flight while its collectives run in order, so
     * a receive may not write where a send or a collective reads or writes, and no collective
     * may write where a send reads. Sends to and receives from self are copied before
     * anything starts (memmove), so they may overlap each other. Receives may share a buffer
     * (a bandwidth test's window): no input is lost, the buffer keeps one of the messages. */
    for (size_t i = 0; i < n; i++) {
        if (!is_p2p_op(&ops[i]))
            continue;
        const bool irecv = ops[i].kind == WEFT_COLL_RECV;
        uintptr_t a;
        size_t alen;
        if (!used_range(&ops[i], rank, nranks, irecv, &a, &alen))
            continue;
        for (size_t j = 0; j < n; j++) {
            if (j == i)
                continue;
            const bool jp2p = is_p2p_op(&ops[j]);
            if (jp2p && ops[i].root == rank && ops[j].root == rank)
                continue;
            for (int side = 0; side < 2; side++) {
                const bool jrecv = side == 1;
                /* a send meets only writers: receives and collectives' outputs */
                if (!irecv && !jrecv)
                    continue;
                if (jp2p && ((ops[j].kind == WEFT_COLL_RECV) != jrecv))
                    continue;
                /* a receive paired twice (counted from the receive's side), or two receives */
                if (jp2p && jrecv)
                    continue;
                uintptr_t b;
                size_t blen;
                if (!used_range(&ops[j], rank, nranks, jrecv, &b, &blen))
                    continue;
                if (a + alen <= b || b + blen <= a)
                    continue;
                if (why && why_len)
                    snprintf(why, why_len,
                             "the %s %s rank %d at %p (%zu bytes) overlaps the %s of %s at %p "
                             "(%zu bytes): in a group, a receive may not write where another "
                             "call of the group reads or writes, nor a collective write where a "
                             "send reads",
                             irecv ? "receive" : "send", irecv ? "from" : "to", ops[i].root,
                             (void *)a, alen, jrecv ? "recvbuf" : "sendbuf",
                             weft_coll_call_name(ops[j].kind), (void *)b, blen);
                return false;
            }
        }
    }
    return true;
}
