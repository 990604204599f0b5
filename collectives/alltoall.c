/*
 * pairwise alltoall: n-1 steps (step s: send to rank+s, receive from rank-s), up to the
 * pipeline depth of steps in flight; each rank sends (n-1)/n * S bytes. The own block is
 * copied locally.
 */
#include <string.h>

#include "collectives/coll_internal.h"
#include "core/error.h"

weft_result_t weft_coll_alltoall_pairwise(struct weft_coll_ctx *ctx,
                                          const struct weft_coll_op *op)
{
    struct weft_request reqs[2 * WEFT_COLL_MAX_DEPTH];
    struct weft_request *list[2 * WEFT_COLL_MAX_DEPTH];
    const int n = ctx->nranks, rank = ctx->rank;
    const size_t block = op->count * weft_dtype_size(op->dtype);
    const char *src = op->sendbuf;
    char *dst = op->recvbuf;
    weft_result_t r;

    memcpy(dst + (size_t)rank * block, src + (size_t)rank * block, block);
    /* Every ordered pair exchanges exactly one message, so the step is the pair's tag. */
    for (int first = 1; first < n; first += ctx->pipeline_depth) {
        int last = first + ctx->pipeline_depth;
        size_t nreq = 0;
        if (last > n)
            last = n;
        for (int s = first; s < last; s++) {
            const int to = (rank + s) % n, from = weft_coll_mod(rank - s, n);
            const uint64_t tag = weft_coll_tag(WEFT_COLL_ALLTOALL, ctx->seq, (uint32_t)s);
            list[nreq] = &reqs[nreq];
            WEFT_CHECK_GOTO(weft_net_irecv(ctx->net, from, dst + (size_t)from * block, block,
                                           tag, &reqs[nreq]),
                            r, fail);
            nreq++;
            list[nreq] = &reqs[nreq];
            WEFT_CHECK_GOTO(weft_net_isend(ctx->net, to, src + (size_t)to * block, block, tag,
                                           &reqs[nreq]),
                            r, fail);
            nreq++;
        }
        WEFT_CHECK_GOTO(weft_net_wait(ctx->net, list, nreq), r, fail);
    }
    return WEFT_OK;
fail:
    weft_coll_fail(ctx);
    return r;
}
