/*
 * Bruck allgather: ceil(log2 n) steps for any n; each rank sends (n-1) * S bytes (S: its
 * block) and puts the n blocks in place at the end. For small blocks, where
 * the ring's n-1 steps of latency dominate.
 */
#include "collectives/coll_internal.h"
#include "core/error.h"

weft_result_t weft_coll_allgather_bruck(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const int n = ctx->nranks, pos = ctx->groups->ring_pos;
    const int *ring = ctx->groups->ring;
    const size_t block = op->count * weft_dtype_size(op->dtype);
    char *tmp, *out = op->recvbuf;

    /* Ranks are numbered by their place on the host-ordered ring, so that the short steps
     * stay inside a host. Block i of tmp is that of the rank i places after this one: every
     * step sends the first blocks held to the rank `dist` places before and appends as many
     * from the rank `dist` places after. */
    WEFT_CHECK(weft_coll_scratch(ctx, block * (size_t)n, (void **)&tmp));
    memcpy(tmp, op->sendbuf, block);
    uint32_t step = 0;
    for (int dist = 1; dist < n; dist *= 2, step++) {
        const size_t nb = (size_t)(dist < n - dist ? dist : n - dist);
        WEFT_CHECK(weft_coll_sendrecv(ctx, WEFT_COLL_ALLGATHER, ring[weft_coll_mod(pos - dist, n)],
                                      tmp, ring[weft_coll_mod(pos + dist, n)],
                                      tmp + (size_t)dist * block, nb * block, step));
    }
    /* Into place: tmp's blocks in ring order from this rank, out's in rank order. */
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)ring[(pos + i) % n] * block, tmp + (size_t)i * block, block);
    return WEFT_OK;
}
