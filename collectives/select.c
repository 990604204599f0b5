/*
 * select.c - picks the algorithm and chunk size of each collective call: WEFT_ALGO and
 * WEFT_CHUNK_SIZE when set, else the cost model's fastest (model.c); logs the plan at INFO
 * once per collective and power-of-two size bucket, and answers weft_coll_plan.
 */
#include <math.h>
#include <stdio.h>
#include <strings.h>

#include "collectives/coll_internal.h"
#include "collectives/hier.h"
#include "collectives/host_order.h"
#include "collectives/sharp.h"
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

/* Every algorithm: its kind, its WEFT_ALGO name, its name in the plan log, and the scratch it
 * takes in units of the call's bytes (times n where `per_rank`: whole vectors of n blocks). */
struct algo {
    enum weft_coll_kind kind;
    const char *name;
    const char *label;
    bool pipelined;
    weft_result_t (*run)(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);
    double scratch;
    bool per_rank;
};

/* The model does not pick an algorithm that needs more scratch than this (WEFT_ALGO may):
 * the pipelined ones do with a few chunks. */
#define AUTO_MAX_SCRATCH ((double)(64 << 20))

static const struct algo algos[] = {
    {WEFT_COLL_ALLREDUCE, "ring", "ring", true, weft_coll_allreduce_ring, 0, false},
    {WEFT_COLL_ALLREDUCE, "rd", "recursive doubling", false, weft_coll_allreduce_rd, 1, false},
    {WEFT_COLL_ALLREDUCE, "rabenseifner", "Rabenseifner", false,
     weft_coll_allreduce_rabenseifner, 1, false},
    {WEFT_COLL_ALLREDUCE, "tree", "double binary tree", true, weft_coll_allreduce_tree, 0, false},
    {WEFT_COLL_ALLREDUCE, "hier", "hierarchical", true, weft_coll_allreduce_hier, 0, false},
    {WEFT_COLL_ALLGATHER, "ring", "ring", true, weft_coll_allgather_ring, 0, false},
    {WEFT_COLL_ALLGATHER, "bruck", "Bruck", false, weft_coll_allgather_bruck, 1, true},
    {WEFT_COLL_REDUCE_SCATTER, "ring", "ring", true, weft_coll_reduce_scatter_ring, 0, false},
    {WEFT_COLL_REDUCE_SCATTER, "halving", "recursive halving", false,
     weft_coll_reduce_scatter_halving, 2, true},
    {WEFT_COLL_BROADCAST, "binomial", "binomial tree", false, weft_coll_broadcast_tree, 0, false},
    {WEFT_COLL_BROADCAST, "chain", "chain", true, weft_coll_broadcast_chain, 0, false},
    {WEFT_COLL_BROADCAST, "scatter_allgather", "scatter-allgather", true,
     weft_coll_broadcast_sag, 0, false},
    {WEFT_COLL_REDUCE, "binomial", "binomial tree", false, weft_coll_reduce_tree, 2, false},
    {WEFT_COLL_REDUCE, "chain", "chain", true, weft_coll_reduce_chain, 0, false},
    {WEFT_COLL_ALLTOALL, "pairwise", "pairwise", false, weft_coll_alltoall_pairwise, 0, false},
    {WEFT_COLL_BARRIER, "dissemination", "dissemination", false,
     weft_coll_barrier_dissemination, 0, false},
};
#define NALGOS (sizeof(algos) / sizeof(algos[0]))

static enum weft_coll_kind kind_by_name(const char *name, size_t len)
{
    static const enum weft_coll_kind kinds[] = {
        WEFT_COLL_ALLREDUCE, WEFT_COLL_BROADCAST, WEFT_COLL_REDUCE, WEFT_COLL_ALLGATHER,
        WEFT_COLL_REDUCE_SCATTER, WEFT_COLL_ALLTOALL, WEFT_COLL_BARRIER};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        const char *k = kind_name(kinds[i]);
        if (strlen(k) == len && !strncasecmp(k, name, len))
            return kinds[i];
    }
    return 0;
}

/* WEFT_ALGO: "auto", or a comma-separated list of NAME (every collective that has an
 * algorithm of that name uses it) and COLLECTIVE=NAME items. */
weft_result_t weft_coll_parse_algo(const char *text, uint8_t forced[WEFT_COLL_KINDS])
{
    memset(forced, 0, WEFT_COLL_KINDS);
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        enum weft_coll_kind only = 0;
        bool found = false;
        const char *name = p;
        size_t nlen = len;
        if (eq) {
            only = kind_by_name(p, (size_t)(eq - p));
            name = eq + 1;
            nlen = len - (size_t)(eq - p) - 1;
            if (!only)
                return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                                  "WEFT_ALGO=%s: '%.*s' is not a collective (allreduce, "
                                  "broadcast, reduce, allgather, reduce_scatter, alltoall, "
                                  "barrier)",
                                  text, (int)(eq - p), p);
        }
        bool matched = false;
        if (nlen == 4 && !strncasecmp(name, "auto", 4)) {
            if (only)
                forced[only] = 0;
            else
                memset(forced, 0, WEFT_COLL_KINDS);
            matched = true;
        }
        for (size_t i = 0; i < NALGOS && !matched; i++) {
            if (strlen(algos[i].name) != nlen || strncasecmp(algos[i].name, name, nlen) ||
                (only && algos[i].kind != only))
                continue;
            forced[algos[i].kind] = (uint8_t)(i + 1);
            found = true;
        }
        matched = matched || found;
        if (!matched)
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG,
                              "WEFT_ALGO=%s: no collective has an algorithm '%.*s' (expected "
                              "auto, or names among ring, rd, rabenseifner, tree, hier, bruck, "
                              "halving, binomial, chain, scatter_allgather, pairwise, "
                              "dissemination, optionally as COLLECTIVE=NAME)",
                              text, (int)nlen, name);
        p = end ? end + 1 : p + len;
    }
    return WEFT_OK;
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

/* A plan: the algorithm, its chunk (0: not pipelined) and the model's time for it. */
struct plan {
    const struct algo *algo;
    size_t chunk;
    double predicted_s;
};

/* The bytes the model counts: the whole vector, or one rank's block (allgather,
 * reduce_scatter, alltoall), as the public calls' count says. */
static size_t model_bytes(const struct weft_coll_op *op)
{
    return op->count * weft_dtype_size(op->dtype);
}

/* The two-level allreduce as the model sees it: a ring allreduce among the L ranks of a host,
 * then one of S/L bytes among the H hosts (both priced on the one link the model has). */
static double hier_time(const struct weft_coll_ctx *ctx, size_t bytes)
{
    const struct weft_coll_groups *g = ctx->groups;
    if (!weft_coll_hier_possible(ctx))
        return weft_coll_model_time(&ctx->model, WEFT_COLL_ALLREDUCE, "ring", ctx->nranks, bytes,
                                    0, NULL);
    double t = 0;
    if (g->nlocal > 1)
        t += weft_coll_model_time(&ctx->model, WEFT_COLL_ALLREDUCE, "ring", g->nlocal, bytes, 0,
                                  NULL);
    if (g->ncross > 1)
        t += weft_coll_model_time(&ctx->model, WEFT_COLL_ALLREDUCE, "ring", g->ncross,
                                  bytes / (size_t)g->nlocal, 0, NULL);
    return t;
}

static struct plan plan_of(const struct weft_coll_ctx *ctx, const struct weft_coll_op *op,
                           const struct algo *a)
{
    struct plan p = {a, 0, 0};
    if (a->run == weft_coll_allreduce_hier) {
        p.chunk = ctx->chunk_size;
        p.predicted_s = hier_time(ctx, model_bytes(op));
        return p;
    }
    const size_t forced_chunk = ctx->chunk_forced ? ctx->chunk_size : 0;
    p.predicted_s = weft_coll_model_time(&ctx->model, op->kind, a->name, ctx->nranks,
                                         model_bytes(op), forced_chunk, &p.chunk);
    if (!a->pipelined)
        p.chunk = 0;
    else if (!p.chunk)
        p.chunk = ctx->chunk_size;
    return p;
}

/* The fixed thresholds of WEFT_SMALL_MSG_SIZE, when set (not 0): latency-bound algorithms
 * below it, ring and chains above. */
static const char *threshold_pick(const struct weft_coll_ctx *ctx, const struct weft_coll_op *op,
                                  size_t bytes)
{
    const bool small = bytes < ctx->small_msg_size;
    switch (op->kind) {
    case WEFT_COLL_ALLREDUCE:
        return !small && op->count >= (size_t)ctx->nranks ? "ring" : "rd";
    case WEFT_COLL_BROADCAST:
    case WEFT_COLL_REDUCE: return small ? "binomial" : "chain";
    default: return NULL;
    }
}

static struct plan pick(const struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const uint8_t forced = op->kind < WEFT_COLL_KINDS ? ctx->forced[op->kind] : 0;
    if (forced)
        return plan_of(ctx, op, &algos[forced - 1]);
    /* Jobs over several hosts: the two-level allreduce from WEFT_HIER_THRESHOLD (hier.c). */
    if (weft_coll_hier_wanted(ctx, op, model_bytes(op)))
        for (size_t i = 0; i < NALGOS; i++)
            if (algos[i].run == weft_coll_allreduce_hier)
                return plan_of(ctx, op, &algos[i]);
    const char *fixed = ctx->small_msg_size ? threshold_pick(ctx, op, model_bytes(op)) : NULL;
    struct plan best = {NULL, 0, INFINITY};
    for (size_t i = 0; i < NALGOS; i++) {
        if (algos[i].kind != op->kind)
            continue;
        if (fixed && strcmp(fixed, algos[i].name))
            continue;
        if (algos[i].run == weft_coll_allreduce_hier) /* only as above */
            continue;
        /* The tree keeps two streams per peer: at depth 1 it would exceed the window. */
        if (!fixed && algos[i].run == weft_coll_allreduce_tree && ctx->pipeline_depth < 2)
            continue;
        const double scratch = algos[i].scratch * (double)model_bytes(op) *
                               (algos[i].per_rank ? ctx->nranks : 1);
        if (!fixed && scratch > AUTO_MAX_SCRATCH)
            continue;
        const struct plan p = plan_of(ctx, op, &algos[i]);
        if (!best.algo || p.predicted_s < best.predicted_s)
            best = p;
    }
    return best;
}

/* pick() again for a call of the same kind, count and element size as the last one: the
 * same plan (the model and the configuration do not change), without the model's cost, a
 * third of an 8-byte broadcast's over shm. */
static struct plan pick_memo(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    if (op->kind >= WEFT_COLL_KINDS)
        return pick(ctx, op);
    struct weft_coll_plan_memo *m = &ctx->plan_memo[op->kind];
    const size_t esize = weft_dtype_size(op->dtype);
    if (m->algo && m->count == op->count && m->esize == esize)
        return (struct plan){&algos[m->algo - 1], m->chunk, m->predicted_s};
    const struct plan p = pick(ctx, op);
    if (p.algo)
        *m = (struct weft_coll_plan_memo){op->count, esize, (uint16_t)(p.algo - algos + 1),
                                          p.chunk, p.predicted_s};
    return p;
}

/* Once per kind and size bucket, so that a sweep logs each plan once. */
static void log_plan(struct weft_coll_ctx *ctx, const struct weft_coll_op *op, size_t bytes,
                     const struct plan *plan)
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
    format_size(chunk, sizeof(chunk), plan->chunk);
    if (op->kind == WEFT_COLL_BARRIER)
        snprintf(what, sizeof(what), "barrier");
    else if (weft_coll_reduces(op->kind))
        snprintf(what, sizeof(what), "%s %s %s %s", kind_name(op->kind), size,
                 weft_dtype_name(op->dtype), weft_op_name(op->op));
    else
        snprintf(what, sizeof(what), "%s %s %s", kind_name(op->kind), size,
                 weft_dtype_name(op->dtype));
    const char *why = op->kind < WEFT_COLL_KINDS && ctx->forced[op->kind] ? "WEFT_ALGO"
                      : plan->algo->run == weft_coll_allreduce_hier ? "WEFT_HIER_THRESHOLD"
                      : ctx->small_msg_size                          ? "WEFT_SMALL_MSG_SIZE"
                                                                     : "model";
    if (plan->chunk)
        WEFT_INFO(COLL, "%s: %s (%s, %.1f us predicted on %s), chunk %s, depth %d, %d ranks",
                  what, plan->algo->label, why, plan->predicted_s * 1e6, ctx->model.link, chunk,
                  ctx->pipeline_depth, ctx->nranks);
    else
        WEFT_INFO(COLL, "%s: %s (%s, %.1f us predicted on %s), %d ranks", what,
                  plan->algo->label, why, plan->predicted_s * 1e6, ctx->model.link,
                  ctx->nranks);
}

weft_result_t weft_coll_plan_query(const struct weft_coll_ctx *ctx, enum weft_coll_kind kind,
                                   size_t count, weft_dtype_t dtype, const char **algo,
                                   size_t *chunk, double *predicted_s)
{
    const struct weft_coll_op op = {kind, NULL, NULL, count, dtype, WEFT_SUM, 0};
    if (ctx->nranks == 1) {
        *algo = "local copy";
        *chunk = 0;
        *predicted_s = 0;
        return WEFT_OK;
    }
    const struct plan p = pick(ctx, &op);
    if (!p.algo)
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "rank %d: %s is not a collective", ctx->rank,
                          kind_name(kind));
    *algo = p.algo->name;
    *chunk = p.chunk;
    *predicted_s = p.predicted_s;
    return WEFT_OK;
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
    /* SHARP offload first, when on and the library supports the dtype and op (sharp.c). */
    if (weft_coll_sharp_takes(ctx, op))
        return weft_coll_sharp_run(ctx, op);
    const struct plan plan = pick_memo(ctx, op);
    if (!plan.algo)
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d: %s is not a collective", ctx->rank,
                          kind_name(op->kind));
    log_plan(ctx, op, bytes, &plan);
    /* One rank: every result is the input (allgather's and alltoall's own block included). */
    if (ctx->nranks == 1) {
        weft_coll_copy(op->recvbuf, op->sendbuf, bytes);
        return WEFT_OK;
    }
    ctx->call_chunk = plan.chunk;
    weft_result_t r = plan.algo->run(ctx, op);
    ctx->call_chunk = 0;
    WEFT_CHECK(r);
    return WEFT_OK;
}
