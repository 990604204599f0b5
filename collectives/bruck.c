/*
 * Bruck allgather: ceil(log2 n) steps for any n; each rank sends (n-1) * S bytes (S: its
 * block) and makes one local rotation of the n blocks at the end. For small blocks, where
 * the ring's n-1 steps of latency dominate.
 */
#include "collectives/coll_internal.h"
#include "core/error.h"

weft_result_t weft_coll_allgather_bruck(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const int n = ctx->nranks, rank = ctx->rank;
    const size_t block = op->count * weft_dtype_size(op->dtype);
    char *tmp, *out = op->recvbuf;

    /* Block i of tmp is rank (rank + i) % n's: every step sends the first blocks held to the
     * rank `dist` below and appends as many from the rank `dist` above. */
    WEFT_CHECK(weft_coll_scratch(ctx, block * (size_t)n, (void **)&tmp));
    memcpy(tmp, op->sendbuf, block);
    uint32_t step = 0;
    for (int dist = 1; dist < n; dist *= 2, step++) {
        const size_t nb = (size_t)(dist < n - dist ? dist : n - dist);
        WEFT_CHECK(weft_coll_sendrecv(ctx, WEFT_COLL_ALLGATHER, weft_coll_mod(rank - dist, n),
                                      tmp, weft_coll_mod(rank + dist, n),
                                      tmp + (size_t)dist * block, nb * block, step));
    }
    /* Rotate into place: tmp[0 .. n-rank) are ranks rank..n-1, the rest 0..rank-1. */
    const size_t head = (size_t)(n - rank) * block;
    memcpy(out + (size_t)rank * block, tmp, head);
    memcpy(out, tmp + head, (size_t)rank * block);
    return WEFT_OK;
}
