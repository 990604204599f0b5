/*
 * Rabenseifner allreduce: reduce-scatter by recursive halving, then allgather by recursive
 * doubling: 2 log2(p) steps (+2 when n is not a power of two p); each rank sends about
 * 2(p-1)/p * S bytes and reduces (p-1)/p * S. The extra ranks fold into a partner first and
 * get the result back last. For mid sizes: a ring's bytes at a tree's step count.
 */
#include "collectives/coll_internal.h"
#include "core/error.h"
#include "core/reduce.h"

/* Vrank v owns the v-th of pof2 nearly equal parts of the vector. */
static size_t ar_first(const struct weft_halving *h, int v)
{
    return weft_coll_part_offset(h->block, (size_t)h->pof2, (size_t)v);
}

weft_result_t weft_coll_allreduce_rabenseifner(struct weft_coll_ctx *ctx,
                                               const struct weft_coll_op *op)
{
    const int n = ctx->nranks, rank = ctx->rank;
    const size_t es = weft_dtype_size(op->dtype), len = op->count * es;
    const int pof2 = weft_coll_pof2_below(n), extra = n - pof2;
    int log2p = 0;
    while ((1 << log2p) < pof2)
        log2p++;
    const uint32_t last_step = 2 * (uint32_t)log2p + 1;
    struct weft_halving h = {.pof2 = pof2, .extra = extra,
                             .vrank = weft_coll_fold_vrank(rank, extra), .block = op->count,
                             .first = ar_first, .step0 = 1};
    char *out = op->recvbuf, *tmp;

    if (h.vrank < 0) {
        WEFT_CHECK(weft_coll_send(ctx, op->kind, rank + 1, op->sendbuf, len, 0));
        return weft_coll_recv(ctx, op->kind, rank + 1, op->recvbuf, len, last_step);
    }
    WEFT_CHECK(weft_coll_scratch(ctx, len, (void **)&tmp));
    const char *cur = op->sendbuf;
    if (rank < 2 * extra) {
        WEFT_CHECK(weft_coll_recv(ctx, op->kind, rank - 1, tmp, len, 0));
        weft_reduce_local(out, tmp, op->sendbuf, op->count, op->dtype, op->op);
        cur = out;
    }
    WEFT_CHECK(weft_coll_halving(ctx, op, &h, cur, out, tmp));
    if (op->op == WEFT_AVG) {
        const size_t at = ar_first(&h, h.vrank);
        weft_reduce_avg_finish(out + at * es, ar_first(&h, h.vrank + 1) - at, op->dtype, n);
    }
    /* Allgather by recursive doubling: the range held doubles each step. */
    uint32_t step = (uint32_t)log2p + 1;
    for (int mask = 1; mask < pof2; mask *= 2, step++) {
        const int lo = h.vrank & ~(mask - 1), plo = lo ^ mask;
        const int peer = weft_coll_fold_rank(h.vrank ^ mask, extra);
        const size_t soff = ar_first(&h, lo), scount = ar_first(&h, lo + mask) - soff;
        const size_t roff = ar_first(&h, plo), rcount = ar_first(&h, plo + mask) - roff;
        WEFT_CHECK(weft_coll_exchange(ctx, op->kind, peer, out + soff * es, scount * es, peer,
                                      out + roff * es, rcount * es, step));
    }
    if (rank < 2 * extra)
        WEFT_CHECK(weft_coll_send(ctx, op->kind, rank - 1, out, len, last_step));
    return WEFT_OK;
}
