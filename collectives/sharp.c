/*
 * sharp.c - SHARP offload: allreduce and barrier through libsharp_coll (NVIDIA HPC-X), loaded
 * with dlopen at communicator init; its out-of-band collectives run over Weft's own ranks.
 *
 * Every rank votes at each step (loaded, initialised, group joined), so that all ranks take
 * the same path: a rank that cannot use SHARP while another does would leave the other
 * waiting in the switch. Data goes through one staging buffer registered once per
 * communicator (sharp_coll_reg_mr costs a memory registration), reduced in place in chunks
 * of SHARP_STAGING bytes: no user buffer is ever registered, so freed and reused user memory
 * needs no cache invalidation here.
 */
#include "collectives/sharp.h"

#include <dlfcn.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collectives/coll_internal.h"
#include "collectives/sharp_api.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/reduce.h"

/* Bytes reduced per sharp_coll_do_allreduce call: the staging buffer's size. */
#define SHARP_STAGING ((size_t)1 << 20)

/* What the library supports when it cannot say (no sharp_coll_caps_query): the types and
 * operations of every SHARP generation. */
#define DEFAULT_DTYPES                                                                        \
    ((1u << SHARP_DTYPE_UNSIGNED) | (1u << SHARP_DTYPE_INT) |                                 \
     (1u << SHARP_DTYPE_UNSIGNED_LONG) | (1u << SHARP_DTYPE_LONG) | (1u << SHARP_DTYPE_FLOAT) | \
     (1u << SHARP_DTYPE_DOUBLE) | (1u << SHARP_DTYPE_FLOAT_SHORT))
#define DEFAULT_OPS ((1u << SHARP_OP_MAX) | (1u << SHARP_OP_MIN) | (1u << SHARP_OP_SUM))

enum mode { MODE_OFF, MODE_AUTO, MODE_ON };

struct weft_sharp {
    void *lib;
    struct {
        sharp_coll_init_fn init;
        sharp_coll_finalize_fn finalize;
        sharp_coll_caps_query_fn caps_query; /* optional */
        sharp_coll_comm_init_fn comm_init;
        sharp_coll_comm_destroy_fn comm_destroy;
        sharp_coll_do_barrier_fn do_barrier;
        sharp_coll_do_allreduce_fn do_allreduce;
        sharp_coll_reg_mr_fn reg_mr;
        sharp_coll_dereg_mr_fn dereg_mr;
        sharp_coll_strerror_fn strerror; /* optional */
    } f;
    const struct sharp_coll_config *default_config; /* optional */
    struct sharp_coll_context *context;
    struct sharp_coll_comm *comm;
    void *staging;
    void *mr;
    uint32_t *world_ranks;
    uint64_t dtypes, ops; /* what every rank's library supports */
    bool ready;
    uint32_t refused_logged[WEFT_NUM_DTYPES]; /* a bit per op */
    bool allreduce_logged, barrier_logged;
};

static const char *sharp_err(const struct weft_sharp *s, int rc)
{
    return s->f.strerror ? s->f.strerror(rc) : "error";
}

static weft_result_t parse_mode(const char *text, enum mode *mode)
{
    if (!strcasecmp(text, "auto") || !text[0])
        *mode = MODE_AUTO;
    else if (!strcmp(text, "0") || !strcasecmp(text, "off") || !strcasecmp(text, "no"))
        *mode = MODE_OFF;
    else if (!strcmp(text, "1") || !strcasecmp(text, "on") || !strcasecmp(text, "yes"))
        *mode = MODE_ON;
    else
        return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "WEFT_SHARP=%s: expected auto, 0 or 1", text);
    return WEFT_OK;
}

/* SHARP's name of a Weft type or operation; SHARP_*_NULL when it has none. AVG reduces as
 * SUM, divided on the host afterwards. */
static enum sharp_datatype sharp_dtype(weft_dtype_t dtype)
{
    switch (dtype) {
    case WEFT_INT8: return SHARP_DTYPE_INT8;
    case WEFT_UINT8: return SHARP_DTYPE_UINT8;
    case WEFT_INT32: return SHARP_DTYPE_INT;
    case WEFT_UINT32: return SHARP_DTYPE_UNSIGNED;
    case WEFT_INT64: return SHARP_DTYPE_LONG;
    case WEFT_UINT64: return SHARP_DTYPE_UNSIGNED_LONG;
    case WEFT_FLOAT16: return SHARP_DTYPE_FLOAT_SHORT;
    case WEFT_BFLOAT16: return SHARP_DTYPE_BFLOAT16;
    case WEFT_FLOAT32: return SHARP_DTYPE_FLOAT;
    case WEFT_FLOAT64: return SHARP_DTYPE_DOUBLE;
    case WEFT_NUM_DTYPES: break;
    }
    return SHARP_DTYPE_NULL;
}

static enum sharp_reduce_op sharp_op(weft_op_t op)
{
    switch (op) {
    case WEFT_SUM:
    case WEFT_AVG: return SHARP_OP_SUM;
    case WEFT_PROD: return SHARP_OP_PROD;
    case WEFT_MIN: return SHARP_OP_MIN;
    case WEFT_MAX: return SHARP_OP_MAX;
    case WEFT_NUM_OPS: break;
    }
    return SHARP_OP_NULL;
}

/* ---- out-of-band collectives over the communicator (SHARP calls them during init) ------- */

static int oob_bcast(void *context, void *buf, int len, int root)
{
    struct weft_coll_ctx *ctx = context;
    const struct weft_coll_op op = {WEFT_COLL_BROADCAST, buf,      buf, (size_t)len,
                                    WEFT_UINT8,          WEFT_SUM, root};
    return len < 0 || root < 0 || root >= ctx->nranks || weft_coll_collective(ctx, &op) != WEFT_OK
               ? SHARP_COLL_EOOB
               : 0;
}

static int oob_barrier(void *context)
{
    struct weft_coll_ctx *ctx = context;
    const struct weft_coll_op op = {WEFT_COLL_BARRIER, NULL, NULL, 0, WEFT_UINT8, WEFT_SUM, 0};
    return weft_coll_collective(ctx, &op) == WEFT_OK ? 0 : SHARP_COLL_EOOB;
}

/* Weft has no gather: an allgather, of which the root keeps the result. */
static int oob_gather(void *context, int root, void *sbuf, void *rbuf, int len)
{
    struct weft_coll_ctx *ctx = context;
    if (len < 0 || root < 0 || root >= ctx->nranks)
        return SHARP_COLL_EINVAL;
    const size_t total = (size_t)len * (size_t)ctx->nranks;
    void *all = malloc(total ? total : 1);
    if (!all)
        return SHARP_COLL_ENOMEM;
    const struct weft_coll_op op = {WEFT_COLL_ALLGATHER, sbuf,     all, (size_t)len,
                                    WEFT_UINT8,          WEFT_SUM, 0};
    const weft_result_t r = weft_coll_collective(ctx, &op);
    if (r == WEFT_OK && ctx->rank == root)
        weft_coll_copy(rbuf, all, total);
    free(all);
    return r == WEFT_OK ? 0 : SHARP_COLL_EOOB;
}

/* ---- setup ------------------------------------------------------------------------------ */

#define RESOLVE(s, field, name, required)                                                     \
    do {                                                                                      \
        *(void **)&(s)->f.field = dlsym((s)->lib, name);                                      \
        if ((required) && !(s)->f.field) {                                                    \
            snprintf(why, why_len, "%s lacks %s", path, name);                                \
            return false;                                                                     \
        }                                                                                     \
    } while (0)

static bool load(struct weft_sharp *s, const char *path, char *why, size_t why_len)
{
    s->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!s->lib) {
        const char *err = dlerror();
        snprintf(why, why_len, "dlopen(\"%s\") failed: %s", path, err ? err : "?");
        return false;
    }
    RESOLVE(s, init, "sharp_coll_init", true);
    RESOLVE(s, finalize, "sharp_coll_finalize", true);
    RESOLVE(s, caps_query, "sharp_coll_caps_query", false);
    RESOLVE(s, comm_init, "sharp_coll_comm_init", true);
    RESOLVE(s, comm_destroy, "sharp_coll_comm_destroy", true);
    RESOLVE(s, do_barrier, "sharp_coll_do_barrier", true);
    RESOLVE(s, do_allreduce, "sharp_coll_do_allreduce", true);
    RESOLVE(s, reg_mr, "sharp_coll_reg_mr", true);
    RESOLVE(s, dereg_mr, "sharp_coll_dereg_mr", true);
    RESOLVE(s, strerror, "sharp_coll_strerror", false);
    s->default_config = dlsym(s->lib, "sharp_coll_default_config");
    return true;
}

/* One vote of every rank: whether its step succeeded (rc, a SHARP code or -1 for a local
 * failure), and what it brings (the job id proposal, the library's capabilities). */
struct vote {
    int32_t rc;
    int32_t pad;
    uint64_t job_id;
    uint64_t dtypes;
    uint64_t ops;
};

/* Allgathers `mine`; `bad` gets the first rank whose rc is not 0 (-1: none). */
static weft_result_t poll_ranks(struct weft_coll_ctx *ctx, const struct vote *mine,
                                struct vote *all, int *bad)
{
    const struct weft_coll_op op = {WEFT_COLL_ALLGATHER, mine,     all, sizeof(*mine),
                                    WEFT_UINT8,          WEFT_SUM, 0};
    WEFT_CHECK(weft_coll_collective(ctx, &op));
    *bad = -1;
    for (int q = 0; q < ctx->nranks && *bad < 0; q++)
        if (all[q].rc != 0)
            *bad = q;
    return WEFT_OK;
}

static void release(struct weft_sharp *s)
{
    if (s->mr)
        s->f.dereg_mr(s->context, s->mr);
    if (s->comm)
        s->f.comm_destroy(s->comm);
    if (s->context)
        s->f.finalize(s->context);
    /* The library stays loaded: it may have started threads, and a later communicator
     * opens the same handle again. */
    free(s->staging);
    free(s->world_ranks);
    free(s);
}

/* The rank among the ranks of its host, as SHARP wants it. */
static int local_rank(const struct weft_coll_ctx *ctx)
{
    const int host = weft_net_peer_host(ctx->net, ctx->rank);
    int local = 0;
    for (int q = 0; q < ctx->rank; q++)
        local += weft_net_peer_host(ctx->net, q) == host;
    return local;
}

/* A failed step: with WEFT_SHARP=1 the error (naming the rank that failed and why),
 * otherwise WEFT_OK after one INFO line; SHARP is off either way. */
static weft_result_t refuse(struct weft_coll_ctx *ctx, struct weft_sharp *s, enum mode mode,
                            const char *path, int bad, bool mine, const char *step,
                            const char *why)
{
    release(s);
    if (mine)
        bad = ctx->rank; /* this rank's own cause first */
    if (mode == MODE_ON) {
        if (bad == ctx->rank)
            return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                              "WEFT_SHARP=1 but SHARP is not usable: %s: %s (library %s, from "
                              "WEFT_SHARP_LIB; WEFT_SHARP=auto falls back to the host "
                              "algorithms)",
                              step, why, path);
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                          "WEFT_SHARP=1 but SHARP is not usable on rank %d: %s failed there (its "
                          "log says why; library %s, from WEFT_SHARP_LIB)",
                          bad, step, path);
    }
    if (bad == ctx->rank)
        WEFT_INFO(COLL, "SHARP off: %s: %s; collectives run on the host", step, why);
    else
        WEFT_INFO(COLL, "SHARP off: %s failed on rank %d; collectives run on the host", step,
                  bad);
    return WEFT_OK;
}

weft_result_t weft_coll_sharp_init(struct weft_coll_ctx *ctx)
{
    enum mode mode;
    WEFT_CHECK(parse_mode(weft_config_str(WEFT_CFG_SHARP), &mode));
    if (mode == MODE_OFF)
        return WEFT_OK;
    const char *path = weft_config_str(WEFT_CFG_SHARP_LIB);
    struct weft_sharp *s = calloc(1, sizeof(*s));
    struct vote *all = calloc((unsigned)ctx->nranks, sizeof(*all));
    if (!s || !all) {
        free(s);
        free(all);
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: SHARP state", ctx->rank);
    }
    weft_result_t r = WEFT_OK;
    int bad, rc;
    char why[512] = "";
    struct vote mine = {0};

    /* 1. Every rank loads the library. */
    mine.rc = load(s, path, why, sizeof(why)) ? 0 : -1;
    randombytes_buf(&mine.job_id, sizeof(mine.job_id));
    if (ctx->nranks == 1) {
        /* Nothing to aggregate; WEFT_SHARP=1 still checks that the library is there. */
        if (mine.rc != 0)
            r = refuse(ctx, s, mode, path, ctx->rank, true, "loading libsharp_coll", why);
        else
            release(s);
        free(all);
        return r;
    }
    WEFT_CHECK_GOTO(poll_ranks(ctx, &mine, all, &bad), r, fail);
    if (bad >= 0) {
        r = refuse(ctx, s, mode, path, bad, mine.rc != 0, "loading libsharp_coll", why);
        goto out;
    }

    /* 2. The job's context (collective: the library calls the out-of-band functions), its
     * capabilities, and the staging buffer registered once. */
    struct sharp_coll_init_spec spec = {0};
    if (s->default_config)
        spec.config = *s->default_config;
    const double timeout_ms = ctx->timeout_s * 1000;
    spec.config.coll_timeout = timeout_ms > 0 && timeout_ms < 2e9 ? (int)timeout_ms : -1;
    spec.job_id = all[0].job_id;
    spec.world_rank = ctx->rank;
    spec.world_size = ctx->nranks;
    spec.world_local_rank = local_rank(ctx);
    spec.enable_thread_support = 1; /* communicators may run in different threads */
    spec.oob_colls = (struct sharp_coll_out_of_band_colls){oob_bcast, oob_barrier, oob_gather};
    spec.oob_ctx = ctx;
    rc = s->f.init(&spec, &s->context);
    const char *step = "sharp_coll_init";
    if (rc == 0) {
        mine.dtypes = DEFAULT_DTYPES;
        mine.ops = DEFAULT_OPS;
        struct sharp_coll_caps caps;
        memset(&caps, 0, sizeof(caps));
        if (s->f.caps_query && s->f.caps_query(s->context, &caps) == 0) {
            mine.dtypes = caps.support_mask.dtypes;
            mine.ops = caps.support_mask.reduce_ops;
        }
        step = "sharp_coll_reg_mr";
        s->staging = aligned_alloc(4096, SHARP_STAGING);
        rc = s->staging ? s->f.reg_mr(s->context, s->staging, SHARP_STAGING, &s->mr)
                        : SHARP_COLL_ENOMEM;
    } else {
        s->context = NULL;
    }
    if (rc != 0) {
        s->mr = NULL;
        snprintf(why, sizeof(why), "%s (%d)", sharp_err(s, rc), rc);
    }
    mine.rc = rc;
    WEFT_CHECK_GOTO(poll_ranks(ctx, &mine, all, &bad), r, fail);
    if (bad >= 0) {
        r = refuse(ctx, s, mode, path, bad, mine.rc != 0, mine.rc != 0 ? step : "sharp_coll_init",
                   why);
        goto out;
    }
    s->dtypes = s->ops = ~(uint64_t)0;
    for (int q = 0; q < ctx->nranks; q++) {
        s->dtypes &= all[q].dtypes;
        s->ops &= all[q].ops;
    }

    /* 3. The group: every rank of the communicator. */
    s->world_ranks = calloc((unsigned)ctx->nranks, sizeof(*s->world_ranks));
    if (!s->world_ranks) {
        rc = SHARP_COLL_ENOMEM;
    } else {
        for (int q = 0; q < ctx->nranks; q++)
            s->world_ranks[q] = (uint32_t)q;
        struct sharp_coll_comm_init_spec cspec = {
            .rank = ctx->rank,
            .size = ctx->nranks,
            .oob_ctx = ctx,
            .group_world_ranks = s->world_ranks,
        };
        rc = s->f.comm_init(s->context, &cspec, &s->comm);
        if (rc != 0)
            s->comm = NULL;
    }
    if (rc != 0)
        snprintf(why, sizeof(why), "%s (%d)", sharp_err(s, rc), rc);
    mine.rc = rc;
    WEFT_CHECK_GOTO(poll_ranks(ctx, &mine, all, &bad), r, fail);
    if (bad >= 0) {
        r = refuse(ctx, s, mode, path, bad, mine.rc != 0, "sharp_coll_comm_init", why);
        goto out;
    }
    s->ready = true;
    ctx->sharp = s;
    WEFT_INFO(COLL,
              "SHARP on (%s): allreduce (dtype mask %#llx, op mask %#llx, in chunks of %zu KiB "
              "through one registered staging buffer) and barrier, %d ranks",
              path, (unsigned long long)s->dtypes, (unsigned long long)s->ops,
              SHARP_STAGING >> 10, ctx->nranks);
    goto out;
fail:
    release(s);
out:
    free(all);
    return r;
}

void weft_coll_sharp_fini(struct weft_coll_ctx *ctx)
{
    if (!ctx->sharp)
        return;
    ctx->sharp->ready = false;
    release(ctx->sharp);
    ctx->sharp = NULL;
}

/* ---- per call ---------------------------------------------------------------------------- */

bool weft_coll_sharp_takes(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    struct weft_sharp *s = ctx->sharp;
    if (!s || !s->ready)
        return false;
    if (op->kind == WEFT_COLL_BARRIER)
        return true;
    if (op->kind != WEFT_COLL_ALLREDUCE || op->count == 0)
        return false;
    const enum sharp_datatype dt = sharp_dtype(op->dtype);
    const enum sharp_reduce_op so = sharp_op(op->op);
    if (dt != SHARP_DTYPE_NULL && so != SHARP_OP_NULL && (s->dtypes >> dt & 1) &&
        (s->ops >> so & 1))
        return true;
    if (!(s->refused_logged[op->dtype] & (1u << op->op))) {
        s->refused_logged[op->dtype] |= 1u << op->op;
        WEFT_INFO(COLL, "SHARP does not support allreduce %s %s (not in the library's "
                        "capabilities): it runs on the host",
                  weft_dtype_name(op->dtype), weft_op_name(op->op));
    }
    return false;
}

static weft_result_t fail_call(struct weft_coll_ctx *ctx, const struct weft_sharp *s,
                               const char *call, int rc)
{
    return WEFT_ERROR(WEFT_ERR_SYSTEM, "rank %d: %s failed: %s (%d)", ctx->rank, call,
                      sharp_err(s, rc), rc);
}

static weft_result_t run_allreduce(struct weft_coll_ctx *ctx, struct weft_sharp *s,
                                   const struct weft_coll_op *op)
{
    const size_t esize = weft_dtype_size(op->dtype);
    const size_t per_chunk = SHARP_STAGING / esize;
    const char *src = op->sendbuf;
    char *dst = op->recvbuf;
    struct sharp_coll_reduce_spec spec = {0};
    spec.sbuf_desc.type = spec.rbuf_desc.type = SHARP_DATA_BUFFER;
    spec.sbuf_desc.mem_type = spec.rbuf_desc.mem_type = SHARP_MEM_TYPE_HOST;
    spec.sbuf_desc.buffer.ptr = spec.rbuf_desc.buffer.ptr = s->staging;
    spec.sbuf_desc.buffer.mem_handle = spec.rbuf_desc.buffer.mem_handle = s->mr;
    spec.dtype = sharp_dtype(op->dtype);
    spec.op = sharp_op(op->op);
    spec.tag_dtype = SHARP_DTYPE_NULL;
    spec.aggr_mode = SHARP_AGGREGATION_NONE;
    if (!s->allreduce_logged) {
        s->allreduce_logged = true;
        WEFT_INFO(COLL, "allreduce %s %s: SHARP offload, chunk %zu KiB, %d ranks",
                  weft_dtype_name(op->dtype), weft_op_name(op->op), SHARP_STAGING >> 10,
                  ctx->nranks);
    }
    for (size_t done = 0; done < op->count;) {
        const size_t n = op->count - done < per_chunk ? op->count - done : per_chunk;
        const size_t bytes = n * esize;
        memcpy(s->staging, src + done * esize, bytes);
        spec.sbuf_desc.buffer.length = spec.rbuf_desc.buffer.length = bytes;
        spec.length = n;
        const int rc = s->f.do_allreduce(s->comm, &spec);
        if (rc != 0)
            return fail_call(ctx, s, "sharp_coll_do_allreduce", rc);
        if (op->op == WEFT_AVG)
            weft_reduce_avg_finish(s->staging, n, op->dtype, ctx->nranks);
        memcpy(dst + done * esize, s->staging, bytes);
        done += n;
    }
    return WEFT_OK;
}

weft_result_t weft_coll_sharp_run(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    struct weft_sharp *s = ctx->sharp;
    if (op->kind == WEFT_COLL_ALLREDUCE)
        return run_allreduce(ctx, s, op);
    if (!s->barrier_logged) {
        s->barrier_logged = true;
        WEFT_INFO(COLL, "barrier: SHARP offload, %d ranks", ctx->nranks);
    }
    const int rc = s->f.do_barrier(s->comm);
    return rc == 0 ? WEFT_OK : fail_call(ctx, s, "sharp_coll_do_barrier", rc);
}
