/*
 * hier.c - two-level allreduce for jobs on several hosts, L ranks on each of H hosts:
 * reduce-scatter inside the host (L-1 steps, (L-1)/L * S bytes sent per rank, over shm),
 * allreduce of each rank's 1/L part across hosts (2(H-1) steps, 2(H-1)/H * S/L bytes sent per
 * rank over the network), allgather inside the host (L-1 steps, (L-1)/L * S bytes). The
 * network carries S/L per rank instead of the flat ring's 2(n-1)/n * S through every rank.
 */
#include "collectives/hier.h"

#include "collectives/coll_internal.h"
#include "collectives/host_order.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/reduce.h"

bool weft_coll_hier_possible(const struct weft_coll_ctx *ctx)
{
    return ctx->groups && ctx->groups->nlocal > 0;
}

bool weft_coll_hier_wanted(const struct weft_coll_ctx *ctx, const struct weft_coll_op *op,
                           size_t bytes)
{
    return op->kind == WEFT_COLL_ALLREDUCE && weft_coll_hier_possible(ctx) &&
           ctx->groups->nhosts > 1 && ctx->groups->nlocal > 1 &&
           bytes >= weft_config_size(WEFT_CFG_HIER_THRESHOLD) &&
           op->count >= (size_t)ctx->nranks;
}

weft_result_t weft_coll_allreduce_hier(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const struct weft_coll_groups *g = ctx->groups;
    if (!weft_coll_hier_possible(ctx)) {
        static bool said;
        if (!said)
            WEFT_INFO(COLL, "WEFT_ALGO=hier: hosts have different numbers of ranks; using the "
                            "host-ordered ring");
        said = true;
        return weft_coll_allreduce_ring(ctx, op);
    }
    const size_t es = weft_dtype_size(op->dtype);
    const int L = g->nlocal;
    /* AVG divides once, by every rank, after the sum across hosts. */
    const weft_op_t sum_op = op->op == WEFT_AVG ? WEFT_SUM : op->op;
    const struct weft_ring_group local = {L, g->local_idx, g->local};
    const struct weft_ring_group cross = {g->ncross, g->ring_pos / L, g->cross};
    const size_t part = weft_coll_part_count(op->count, (size_t)L, (size_t)g->local_idx);
    char *mine = (char *)op->recvbuf +
                 weft_coll_part_offset(op->count, (size_t)L, (size_t)g->local_idx) * es;
    const void *cross_src = mine;

    if (L > 1)
        WEFT_CHECK(weft_coll_ring_on(ctx, &local, op->sendbuf, op->recvbuf, op->count,
                                     op->dtype, sum_op, true, false));
    else
        cross_src = op->sendbuf;
    /* Every phase gets its own tags: a fast peer's next phase must not meet this one's
     * receives. Every rank bumps alike. */
    ctx->seq++;
    if (g->ncross > 1)
        WEFT_CHECK(weft_coll_ring_on(ctx, &cross, cross_src, mine, part, op->dtype, sum_op, true,
                                     true));
    else
        weft_coll_copy(mine, cross_src, part * es);
    if (op->op == WEFT_AVG)
        weft_reduce_avg_finish(mine, part, op->dtype, ctx->nranks);
    ctx->seq++;
    if (L > 1)
        WEFT_CHECK(weft_coll_ring_on(ctx, &local, op->recvbuf, op->recvbuf, op->count,
                                     op->dtype, sum_op, false, true));
    return WEFT_OK;
}
