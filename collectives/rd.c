/*
 * recursive doubling allreduce: log2(p) steps (+2 when n is not a power of two p); each rank
 * sends log2(p) * S bytes (extra ranks send S once and receive S once). For small messages.
 */
#include "collectives/coll_internal.h"
#include "core/error.h"
#include "core/reduce.h"

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
        WEFT_CHECK(weft_coll_send(ctx, WEFT_COLL_ALLREDUCE, rank + 1, op->sendbuf, len, 0));
        WEFT_CHECK(weft_coll_recv(ctx, WEFT_COLL_ALLREDUCE, rank + 1, op->recvbuf, len,
                                  last_step));
        return WEFT_OK;
    }
    if (rank < 2 * extra) {
        WEFT_CHECK(weft_coll_recv(ctx, WEFT_COLL_ALLREDUCE, rank - 1, tmp, len, 0));
        weft_reduce_local(op->recvbuf, tmp, cur, op->count, op->dtype, op->op);
        cur = op->recvbuf;
    }
    /* Ranks in the power-of-two group, renumbered 0..pof2-1 in rank order so that the lower
     * partner's partial is always the left operand: every rank computes the same bits. */
    const int vrank = rank < 2 * extra ? rank / 2 : rank - extra;
    for (int mask = 1, step = 1; mask < pof2; mask <<= 1, step++) {
        const int vpeer = vrank ^ mask;
        const int peer = vpeer < extra ? vpeer * 2 + 1 : vpeer + extra;
        WEFT_CHECK(weft_coll_sendrecv(ctx, WEFT_COLL_ALLREDUCE, peer, cur, peer, tmp, len,
                                      (uint32_t)step));
        if (vpeer < vrank)
            weft_reduce_local(op->recvbuf, tmp, cur, op->count, op->dtype, op->op);
        else
            weft_reduce_local(op->recvbuf, cur, tmp, op->count, op->dtype, op->op);
        cur = op->recvbuf;
    }
    if (op->op == WEFT_AVG)
        weft_reduce_avg_finish(op->recvbuf, op->count, op->dtype, n);
    if (rank < 2 * extra)
        WEFT_CHECK(weft_coll_send(ctx, WEFT_COLL_ALLREDUCE, rank - 1, op->recvbuf, len,
                                  last_step));
    return WEFT_OK;
}
