/*
 * dissemination barrier: ceil(log2 n) steps (step k: signal rank+2^k, wait for rank-2^k);
 * each rank sends ceil(log2 n) zero-byte messages.
 */
#include "collectives/coll_internal.h"
#include "core/error.h"

weft_result_t weft_coll_barrier_dissemination(struct weft_coll_ctx *ctx,
                                              const struct weft_coll_op *op)
{
    const int n = ctx->nranks, rank = ctx->rank;
    char none[1]; /* zero-byte messages still get a valid address */

    (void)op; /* a barrier moves no data; the signature is every algorithm's */
    for (int dist = 1, step = 0; dist < n; dist <<= 1, step++)
        WEFT_CHECK(weft_coll_sendrecv(ctx, WEFT_COLL_BARRIER, (rank + dist) % n, none,
                                      weft_coll_mod(rank - dist, n), none, 0, (uint32_t)step));
    return WEFT_OK;
}
