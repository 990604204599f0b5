/*
 * select.c - picks the algorithm of each collective call from its size and the tuning knobs,
 * and logs the plan at INFO once per collective and power-of-two size bucket.
 */
#include <stdio.h>

#include "collectives/coll_internal.h"
#include "collectives/hier.h"
#include "core/error.h"
#include "core/log.h"

static const char *kind_name(enum weft_coll_kind kind)
{
    switch (kind) {
    case WEFT_COLL_ALLREDUCE: return "allreduce";
    case WEFT_COLL_BROADCAST: return "broadcast";
    case WEFT_COLL_REDUCE: return "reduce";
    case WEFT_COLL_ALLGATHER: return "allgather";
    case WEFT_COLL_REDUCE_SCATTER: return "reduce_scatter";
    case WEFT_COLL_ALLTOALL: return "alltoall";
    case WEFT_COLL_BARRIER: return "barrier";
    case WEFT_COLL_SEND: return "send";
    case WEFT_COLL_RECV: return "recv";
    case WEFT_COLL_CHECK: return "check";
    }
    return "?";
}

static void format_size(char *buf, size_t len, size_t bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    unsigned u = 0;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    if (v == (double)(size_t)v)
        snprintf(buf, len, "%zu %s", (size_t)v, units[u]);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
}

static bool has_reduction(enum weft_coll_kind kind)
{
    return kind == WEFT_COLL_ALLREDUCE || kind == WEFT_COLL_REDUCE ||
           kind == WEFT_COLL_REDUCE_SCATTER;
}

/* Once per kind and size bucket, so that a sweep logs each plan once. */
static void log_plan(struct weft_coll_ctx *ctx, const struct weft_coll_op *op, size_t bytes,
                     const char *algo, bool pipelined)
{
    unsigned bucket = 0;
    for (size_t b = bytes; b > 1 && bucket < 31; b >>= 1)
        bucket++;
    uint32_t *seen = &ctx->logged_plans[op->kind & 15];
    if (*seen & (1u << bucket))
        return;
    *seen |= 1u << bucket;

    char size[32], chunk[32], what[96];
    format_size(size, sizeof(size), bytes);
    format_size(chunk, sizeof(chunk), ctx->chunk_size);
    if (op->kind == WEFT_COLL_BARRIER)
        snprintf(what, sizeof(what), "barrier");
    else if (has_reduction(op->kind))
        snprintf(what, sizeof(what), "%s %s %s %s", kind_name(op->kind), size,
                 weft_dtype_name(op->dtype), weft_op_name(op->op));
    else
        snprintf(what, sizeof(what), "%s %s %s", kind_name(op->kind), size,
                 weft_dtype_name(op->dtype));
    if (pipelined)
        WEFT_INFO(COLL, "%s: %s, chunk %s, depth %d, %d ranks", what, algo, chunk,
                  ctx->pipeline_depth, ctx->nranks);
    else
        WEFT_INFO(COLL, "%s: %s, %d ranks", what, algo, ctx->nranks);
}

/* An algorithm as the plan log names it. */
struct plan {
    const char *name;
    bool pipelined;
    weft_result_t (*run)(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);
};

static struct plan pick(const struct weft_coll_ctx *ctx, const struct weft_coll_op *op,
                        size_t bytes)
{
    static const struct plan ring_allreduce = {"ring", true, weft_coll_allreduce_ring},
                             rd = {"recursive doubling", false, weft_coll_allreduce_rd},
                             bcast_tree = {"binomial tree", false, weft_coll_broadcast_tree},
                             bcast_chain = {"chain", true, weft_coll_broadcast_chain},
                             reduce_tree = {"binomial tree", false, weft_coll_reduce_tree},
                             reduce_chain = {"chain", true, weft_coll_reduce_chain},
                             allgather = {"ring", true, weft_coll_allgather_ring},
                             reduce_scatter = {"ring", true, weft_coll_reduce_scatter_ring},
                             alltoall = {"pairwise", false, weft_coll_alltoall_pairwise},
                             barrier = {"dissemination", false, weft_coll_barrier_dissemination},
                             none = {NULL, false, NULL};
    const bool small = bytes < ctx->small_msg_size;
    switch (op->kind) {
    case WEFT_COLL_ALLREDUCE:
        if (weft_coll_hier_wanted(ctx, op, bytes)) /* hier.c: WEFT_ALGO=hier, or multi-host */
            return (struct plan){"hierarchical", true, weft_coll_allreduce_hier};
        if (ctx->algo == WEFT_ALGO_RING)
            return ring_allreduce;
        if (ctx->algo == WEFT_ALGO_RD)
            return rd;
        /* ring blocks would be empty below n elements: latency wins */
        return !small && op->count >= (size_t)ctx->nranks ? ring_allreduce : rd;
    case WEFT_COLL_BROADCAST: return small ? bcast_tree : bcast_chain;
    case WEFT_COLL_REDUCE: return small ? reduce_tree : reduce_chain;
    case WEFT_COLL_ALLGATHER: return allgather;
    case WEFT_COLL_REDUCE_SCATTER: return reduce_scatter;
    case WEFT_COLL_ALLTOALL: return alltoall;
    case WEFT_COLL_BARRIER: return barrier;
    case WEFT_COLL_SEND:
    case WEFT_COLL_RECV:
    case WEFT_COLL_CHECK:
        break;
    }
    return none;
}

weft_result_t weft_coll_collective(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const size_t bytes = op->count * weft_dtype_size(op->dtype);

    ctx->seq++;
    /* Every rank passes the same count, so an empty call is empty everywhere. */
    if (op->kind != WEFT_COLL_BARRIER && op->count == 0)
        return WEFT_OK;
    /* Summed in int32 chunks, each of them a collective of its own. */
    if (ctx->nranks > 1 && weft_coll_avg_widens(op))
        return weft_coll_avg_wide(ctx, op);
    const struct plan plan = pick(ctx, op, bytes);
    if (!plan.run)
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d: %s is not a collective", ctx->rank,
                          kind_name(op->kind));
    log_plan(ctx, op, bytes, plan.name, plan.pipelined);
    /* One rank: every result is the input (allgather's and alltoall's own block included). */
    if (ctx->nranks == 1) {
        weft_coll_copy(op->recvbuf, op->sendbuf, bytes);
        return WEFT_OK;
    }
    WEFT_CHECK(plan.run(ctx, op));
    return WEFT_OK;
}
