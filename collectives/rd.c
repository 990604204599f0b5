/*
 * recursive doubling allreduce: log2(p) steps (+2 when n is not a power of two p); each rank
 * sends log2(p) * S bytes (extra ranks send S once and receive S once). For small messages.
 */
#include <string.h>

#include "collectives/coll_internal.h"
#include "core/error.h"
#include "core/reduce.h"

/* Exchanges `len` bytes with `peer` (send `mine`, receive into `theirs`) and waits. */
static weft_result_t exchange(struct weft_coll_ctx *ctx, int peer, const void *mine, void *theirs,
                              size_t len, uint32_t step)
{
    struct weft_request reqs[2];
    struct weft_request *const list[2] = {&reqs[0], &reqs[1]};
    const uint64_t tag = weft_coll_tag(WEFT_COLL_ALLREDUCE, ctx->seq, step);
    weft_result_t r;
    WEFT_CHECK_GOTO(weft_net_irecv(ctx->net, peer, theirs, len, tag, &reqs[0]), r, fail);
    WEFT_CHECK_GOTO(weft_net_isend(ctx->net, peer, mine, len, tag, &reqs[1]), r, fail);
    WEFT_CHECK_GOTO(weft_net_wait(ctx->net, list, 2), r, fail);
    return WEFT_OK;
fail:
    weft_coll_fail(ctx);
    return r;
}

static weft_result_t send_one(struct weft_coll_ctx *ctx, int peer, const void *buf, size_t len,
                              uint32_t step)
{
    struct weft_request req;
    weft_result_t r;
    WEFT_CHECK_GOTO(weft_net_isend(ctx->net, peer, buf, len,
                                   weft_coll_tag(WEFT_COLL_ALLREDUCE, ctx->seq, step), &req),
                    r, fail);
    WEFT_CHECK_GOTO(weft_net_wait_one(ctx->net, &req), r, fail);
    return WEFT_OK;
fail:
    weft_coll_fail(ctx);
    return r;
}

static weft_result_t recv_one(struct weft_coll_ctx *ctx, int peer, void *buf, size_t len,
                              uint32_t step)
{
    struct weft_request req;
    weft_result_t r;
    WEFT_CHECK_GOTO(weft_net_irecv(ctx->net, peer, buf, len,
                                   weft_coll_tag(WEFT_COLL_ALLREDUCE, ctx->seq, step), &req),
                    r, fail);
    WEFT_CHECK_GOTO(weft_net_wait_one(ctx->net, &req), r, fail);
    return WEFT_OK;
fail:
    weft_coll_fail(ctx);
    return r;
}

weft_result_t weft_coll_allreduce_rd(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const int n = ctx->nranks, rank = ctx->rank;
    const size_t len = op->count * weft_dtype_size(op->dtype);
    const void *cur = op->sendbuf; /* this rank's partial result so far */
    void *tmp;
    int pof2 = 1, log2p = 0;

    while (pof2 * 2 <= n) {
        pof2 *= 2;
        log2p++;
    }
    /* The first 2*extra ranks pair up (even, odd); the odd one carries the pair onward. */
    const int extra = n - pof2;
    const uint32_t last_step = (uint32_t)log2p + 1;
    WEFT_CHECK(weft_coll_scratch(ctx, len, &tmp));
    if (rank < 2 * extra && rank % 2 == 0) {
        WEFT_CHECK(send_one(ctx, rank + 1, op->sendbuf, len, 0));
        WEFT_CHECK(recv_one(ctx, rank + 1, op->recvbuf, len, last_step));
        return WEFT_OK;
    }
    if (rank < 2 * extra) {
        WEFT_CHECK(recv_one(ctx, rank - 1, tmp, len, 0));
        weft_reduce_local(op->recvbuf, tmp, cur, op->count, op->dtype, op->op);
        cur = op->recvbuf;
    }
    /* Ranks in the power-of-two group, renumbered 0..pof2-1 in rank order so that the lower
     * partner's partial is always the left operand: every rank computes the same bits. */
    const int vrank = rank < 2 * extra ? rank / 2 : rank - extra;
    for (int mask = 1, step = 1; mask < pof2; mask <<= 1, step++) {
        const int vpeer = vrank ^ mask;
        const int peer = vpeer < extra ? vpeer * 2 + 1 : vpeer + extra;
        WEFT_CHECK(exchange(ctx, peer, cur, tmp, len, (uint32_t)step));
        if (vpeer < vrank)
            weft_reduce_local(op->recvbuf, tmp, cur, op->count, op->dtype, op->op);
        else
            weft_reduce_local(op->recvbuf, cur, tmp, op->count, op->dtype, op->op);
        cur = op->recvbuf;
    }
    if (cur != op->recvbuf)
        memcpy(op->recvbuf, cur, len); /* one rank: nothing was reduced */
    if (op->op == WEFT_AVG)
        weft_reduce_avg_finish(op->recvbuf, op->count, op->dtype, n);
    if (rank < 2 * extra)
        WEFT_CHECK(send_one(ctx, rank - 1, op->recvbuf, len, last_step));
    return WEFT_OK;
}
