/*
 * select.c - picks the algorithm of each collective call from its size and the tuning knobs,
 * and logs the plan at INFO once per collective and power-of-two size bucket.
 */
#include <stdio.h>

#include "collectives/coll_internal.h"
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

static weft_result_t run_allreduce(struct weft_coll_ctx *ctx, const struct weft_coll_op *op,
                                   size_t bytes)
{
    bool ring;
    if (ctx->algo == WEFT_ALGO_RING)
        ring = true;
    else if (ctx->algo == WEFT_ALGO_RD)
        ring = false;
    else /* ring blocks would be empty below n elements: latency wins */
        ring = bytes >= ctx->small_msg_size && op->count >= (size_t)ctx->nranks;
    log_plan(ctx, op, bytes, ring ? "ring" : "recursive doubling", ring);
    return ring ? weft_coll_allreduce_ring(ctx, op) : weft_coll_allreduce_rd(ctx, op);
}

weft_result_t weft_coll_collective(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const size_t bytes = op->count * weft_dtype_size(op->dtype);
    const bool small = bytes < ctx->small_msg_size;

    ctx->seq++;
    /* Every rank passes the same count, so an empty call is empty everywhere. */
    if (op->kind != WEFT_COLL_BARRIER && op->count == 0)
        return WEFT_OK;
    switch (op->kind) {
    case WEFT_COLL_ALLREDUCE:
        WEFT_CHECK(run_allreduce(ctx, op, bytes));
        return WEFT_OK;
    case WEFT_COLL_BROADCAST:
        log_plan(ctx, op, bytes, small ? "binomial tree" : "chain", !small);
        WEFT_CHECK(small ? weft_coll_broadcast_tree(ctx, op) : weft_coll_broadcast_chain(ctx, op));
        return WEFT_OK;
    case WEFT_COLL_REDUCE:
        log_plan(ctx, op, bytes, small ? "binomial tree" : "chain", !small);
        WEFT_CHECK(small ? weft_coll_reduce_tree(ctx, op) : weft_coll_reduce_chain(ctx, op));
        return WEFT_OK;
    case WEFT_COLL_ALLGATHER:
        log_plan(ctx, op, bytes, "ring", true);
        WEFT_CHECK(weft_coll_allgather_ring(ctx, op));
        return WEFT_OK;
    case WEFT_COLL_REDUCE_SCATTER:
        log_plan(ctx, op, bytes, "ring", true);
        WEFT_CHECK(weft_coll_reduce_scatter_ring(ctx, op));
        return WEFT_OK;
    case WEFT_COLL_ALLTOALL:
        log_plan(ctx, op, bytes, "pairwise", false);
        WEFT_CHECK(weft_coll_alltoall_pairwise(ctx, op));
        return WEFT_OK;
    case WEFT_COLL_BARRIER:
        log_plan(ctx, op, 0, "dissemination", false);
        WEFT_CHECK(weft_coll_barrier_dissemination(ctx));
        return WEFT_OK;
    case WEFT_COLL_SEND:
    case WEFT_COLL_RECV:
        break;
    }
    return WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d: %s is not a collective", ctx->rank,
                      kind_name(op->kind));
}
