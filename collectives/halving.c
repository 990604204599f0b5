/*
 * recursive-halving reduce-scatter: log2(p) steps (+2 when n is not a power of two p); each
 * rank sends about (p-1)/p * S bytes and reduces as much (S: the whole input, n blocks); the
 * extra ranks first fold their input into a partner. For small and mid sizes. The halving
 * itself is shared with Rabenseifner's allreduce (rabenseifner.c).
 */
#include "collectives/coll_internal.h"
#include "core/error.h"
#include "core/reduce.h"

int weft_coll_pof2_below(int n)
{
    int p = 1;
    while (p <= n / 2)
        p *= 2;
    return p;
}

/* The first 2*extra ranks pair up (even, odd); the odd one stands for the pair in the
 * power-of-two group, whose members are renumbered 0..pof2-1 in rank order. */
int weft_coll_fold_vrank(int rank, int extra)
{
    if (rank < 2 * extra)
        return rank % 2 ? rank / 2 : -1;
    return rank - extra;
}

int weft_coll_fold_rank(int vrank, int extra)
{
    return vrank < extra ? 2 * vrank + 1 : vrank + extra;
}

weft_result_t weft_coll_halving(struct weft_coll_ctx *ctx, const struct weft_coll_op *op,
                                const struct weft_halving *h, const char *cur, char *acc,
                                char *tmp)
{
    const size_t es = weft_dtype_size(op->dtype);
    int lo = 0, hi = h->pof2;
    uint32_t step = h->step0;
    for (int mask = h->pof2 / 2; mask >= 1; mask /= 2, step++) {
        const int vpeer = h->vrank ^ mask;
        const int peer = weft_coll_fold_rank(vpeer, h->extra);
        const int mid = lo + mask;
        const int klo = h->vrank < mid ? lo : mid, khi = h->vrank < mid ? mid : hi;
        const int slo = h->vrank < mid ? mid : lo, shi = h->vrank < mid ? hi : mid;
        const size_t koff = h->first(h, klo), kcount = h->first(h, khi) - koff;
        const size_t soff = h->first(h, slo), scount = h->first(h, shi) - soff;
        WEFT_CHECK(weft_coll_exchange(ctx, op->kind, peer, cur + soff * es, scount * es, peer,
                                      tmp, kcount * es, step));
        /* The lower rank's partial is the left operand, as in every other algorithm. */
        if (vpeer < h->vrank)
            weft_reduce_local(acc + koff * es, tmp, cur + koff * es, kcount, op->dtype, op->op);
        else
            weft_reduce_local(acc + koff * es, cur + koff * es, tmp, kcount, op->dtype, op->op);
        cur = acc;
        lo = klo;
        hi = khi;
    }
    return WEFT_OK;
}

/* reduce_scatter: vrank v owns the blocks of the ranks it stands for. */
static size_t rs_first(const struct weft_halving *h, int v)
{
    const int block = v < h->extra ? 2 * v : v + h->extra;
    return (size_t)block * h->block;
}

/* The largest range the first halving step keeps, in elements. */
static size_t halving_tmp(const struct weft_halving *h)
{
    const size_t a = h->first(h, h->pof2 / 2) - h->first(h, 0);
    const size_t b = h->first(h, h->pof2) - h->first(h, h->pof2 / 2);
    return a > b ? a : b;
}

weft_result_t weft_coll_reduce_scatter_halving(struct weft_coll_ctx *ctx,
                                               const struct weft_coll_op *op)
{
    const int n = ctx->nranks, rank = ctx->rank;
    const size_t es = weft_dtype_size(op->dtype), total = op->count * (size_t)n;
    const int pof2 = weft_coll_pof2_below(n), extra = n - pof2;
    int log2p = 0;
    while ((1 << log2p) < pof2)
        log2p++;
    const uint32_t last_step = (uint32_t)log2p + 1;
    struct weft_halving h = {.pof2 = pof2, .extra = extra,
                             .vrank = weft_coll_fold_vrank(rank, extra), .block = op->count,
                             .first = rs_first, .step0 = 1};
    char *acc, *tmp;

    if (h.vrank < 0) {
        /* Folded away: the partner reduces for both and hands back this rank's block. */
        WEFT_CHECK(weft_coll_send(ctx, op->kind, rank + 1, op->sendbuf, total * es, 0));
        return weft_coll_recv(ctx, op->kind, rank + 1, op->recvbuf, op->count * es, last_step);
    }
    /* recvbuf holds one block, so partial sums live in scratch: the whole vector, and a
     * receive area as large as a folded partner's input. */
    const size_t acc_bytes = weft_coll_align_up(total * es);
    size_t tmp_elems = halving_tmp(&h);
    if (rank < 2 * extra)
        tmp_elems = total;
    WEFT_CHECK(weft_coll_scratch(ctx, acc_bytes + tmp_elems * es, (void **)&acc));
    tmp = acc + acc_bytes;
    const char *cur = op->sendbuf;
    if (rank < 2 * extra) {
        WEFT_CHECK(weft_coll_recv(ctx, op->kind, rank - 1, tmp, total * es, 0));
        weft_reduce_local(acc, tmp, op->sendbuf, total, op->dtype, op->op);
        cur = acc;
    }
    WEFT_CHECK(weft_coll_halving(ctx, op, &h, cur, acc, tmp));
    const size_t mine = rs_first(&h, h.vrank), owned = rs_first(&h, h.vrank + 1) - mine;
    if (op->op == WEFT_AVG)
        weft_reduce_avg_finish(acc + mine * es, owned, op->dtype, n);
    if (rank < 2 * extra)
        WEFT_CHECK(weft_coll_send(ctx, op->kind, rank - 1, acc + (size_t)(rank - 1) * op->count * es,
                                  op->count * es, last_step));
    weft_coll_copy(op->recvbuf, acc + (size_t)rank * op->count * es, op->count * es);
    return WEFT_OK;
}
