/*
 * layout.c - which buffers an operation touches on a rank, and how big they are: the one
 * answer that argument checks, stream staging and the device paths share.
 */
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
    }
    return "weft_?";
}
