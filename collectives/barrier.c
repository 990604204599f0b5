/*
 * dissemination barrier: ceil(log2 n) steps (step k: signal rank+2^k, wait for rank-2^k);
 * each rank sends ceil(log2 n) zero-byte messages.
 */
#include "collectives/coll_internal.h"
#include "core/error.h"

weft_result_t weft_coll_barrier_dissemination(struct weft_coll_ctx *ctx)
{
    const int n = ctx->nranks, rank = ctx->rank;
    char none[1]; /* zero-byte messages still get a valid address */
    weft_result_t r;

    for (int dist = 1, step = 0; dist < n; dist <<= 1, step++) {
        struct weft_request reqs[2];
        struct weft_request *const list[2] = {&reqs[0], &reqs[1]};
        const uint64_t tag = weft_coll_tag(WEFT_COLL_BARRIER, ctx->seq, (uint32_t)step);
        WEFT_CHECK_GOTO(weft_net_irecv(ctx->net, weft_coll_mod(rank - dist, n), none, 0, tag,
                                       &reqs[0]),
                        r, fail);
        WEFT_CHECK_GOTO(weft_net_isend(ctx->net, (rank + dist) % n, none, 0, tag, &reqs[1]), r,
                        fail);
        WEFT_CHECK_GOTO(weft_net_wait(ctx->net, list, 2), r, fail);
    }
    return WEFT_OK;
fail:
    weft_coll_fail(ctx);
    return r;
}
