/*
 * device allreduce through CUDA IPC (one host): 4 host steps (handle allgather, map check,
 * two barriers); through HBM each rank reads n chunks and writes 1 (reduce-scatter), then
 * reads and writes n-1 chunks (allgather): (3n-1)/n * S bytes of S per rank, no bytes on the net.
 */
#include "collectives/device_allreduce.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/coll_internal.h"
#include "core/error.h"
#include "core/log.h"
#include "gpu/gpu.h"
#include "gpu/ipc.h"

/* What each rank tells the others before any data moves. */
struct record {
    int32_t ok;     /* both buffers exported */
    int32_t device; /* the GPU it works on */
    struct weft_ipc_buf send, recv;
    char why[160]; /* when !ok: the reason, for every rank's log */
};

enum path { PATH_NONE = -1, PATH_STAGED, PATH_IPC };

struct weft_dev_allreduce {
    struct weft_ipc *ipc; /* NULL: its creation failed (setup_error says why) */
    char setup_error[160];
    enum path logged; /* the path logged last: logged again only when it changes */
    struct record *records;
    int32_t *status;
    void **peer_send, **peer_recv; /* this call's pointers of every rank's buffers */
};

static weft_result_t state_create(const struct weft_coll_ctx *ctx, struct weft_dev_allreduce **out)
{
    const size_t n = (size_t)ctx->nranks;
    struct weft_dev_allreduce *d = calloc(1, sizeof(*d));
    if (d) {
        d->records = calloc(n + 1, sizeof(*d->records));
        d->status = calloc(n + 1, sizeof(*d->status));
        d->peer_send = calloc(n, sizeof(void *));
        d->peer_recv = calloc(n, sizeof(void *));
    }
    if (!d || !d->records || !d->status || !d->peer_send || !d->peer_recv) {
        weft_dev_allreduce_destroy(d);
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: device allreduce state", ctx->rank);
    }
    d->logged = PATH_NONE;
    if (weft_ipc_create(ctx->rank, ctx->nranks, &d->ipc) != WEFT_OK) {
        d->ipc = NULL;
        snprintf(d->setup_error, sizeof(d->setup_error), "%s", weft_error_message());
    }
    *out = d;
    return WEFT_OK;
}

void weft_dev_allreduce_destroy(struct weft_dev_allreduce *d)
{
    if (!d)
        return;
    weft_ipc_destroy(d->ipc);
    free(d->records);
    free(d->status);
    free(d->peer_send);
    free(d->peer_recv);
    free(d);
}

/* Every rank's `mine` into d->status, which doubles as a barrier: a rank gets past it only
 * once every rank contributed. *bad is the first rank whose status is not WEFT_OK, or -1. */
static weft_result_t status_allgather(struct weft_coll_ctx *ctx, struct weft_dev_allreduce *d,
                                      int32_t mine, int *bad)
{
    d->status[ctx->nranks] = mine;
    const struct weft_coll_op op = {WEFT_COLL_ALLGATHER, &d->status[ctx->nranks], d->status,
                                    sizeof(int32_t), WEFT_UINT8, WEFT_SUM, 0};
    WEFT_CHECK(weft_coll_run(ctx, &op, 1));
    *bad = -1;
    for (int q = 0; q < ctx->nranks && *bad < 0; q++)
        if (d->status[q] != WEFT_OK)
            *bad = q;
    return WEFT_OK;
}

/* A barrier that also tells every rank how the others did: WEFT_OK when every rank's `mine`
 * was; else this rank's own failure, or WEFT_ERR_REMOTE naming the first rank that failed
 * `step`. */
static weft_result_t all_passed(struct weft_coll_ctx *ctx, struct weft_dev_allreduce *d,
                                weft_result_t mine, const char *step)
{
    int bad;
    WEFT_CHECK(status_allgather(ctx, d, (int32_t)mine, &bad));
    if (bad < 0)
        return WEFT_OK;
    if (bad == ctx->rank)
        return mine;
    return WEFT_ERROR(WEFT_ERR_REMOTE, "weft_allreduce: rank %d: rank %d failed %s", ctx->rank, bad,
                      step);
}

/* This rank's record: can it share both buffers, and where are they. */
static void describe_mine(const struct weft_dev_allreduce *d, const struct weft_coll_op *op,
                          struct record *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->device = d->ipc ? weft_ipc_device(d->ipc) : -1;
    const size_t es = weft_dtype_size(op->dtype);
    const char *why = NULL;
    if (!d->ipc)
        why = d->setup_error;
    else if (weft_gpu_pointer_kind(op->sendbuf) != WEFT_GPU_MEM_DEVICE ||
             weft_gpu_pointer_kind(op->recvbuf) != WEFT_GPU_MEM_DEVICE)
        why = "a buffer is host or managed memory, not cudaMalloc'd device memory";
    else if ((uintptr_t)op->sendbuf % es || (uintptr_t)op->recvbuf % es)
        why = "a buffer is not aligned to its elements";
    else if (weft_ipc_export(d->ipc, op->sendbuf, &rec->send) != WEFT_OK ||
             weft_ipc_export(d->ipc, op->recvbuf, &rec->recv) != WEFT_OK)
        why = weft_error_message();
    rec->ok = why == NULL;
    if (why)
        snprintf(rec->why, sizeof(rec->why), "%s", why);
}

/* Steps 1 and 2 of the decision: every rank's record, then every rank maps its peers'
 * buffers and says whether it could. *use_ipc is the same on every rank. */
static weft_result_t decide(struct weft_coll_ctx *ctx, struct weft_dev_allreduce *d,
                            const struct weft_coll_op *op, bool *use_ipc, char *why, size_t len)
{
    const int n = ctx->nranks, me = ctx->rank;
    struct record *all = d->records, *mine = &d->records[n];
    describe_mine(d, op, mine);
    const struct weft_coll_op gather = {WEFT_COLL_ALLGATHER, mine, all, sizeof(*mine),
                                        WEFT_UINT8, WEFT_SUM, 0};
    WEFT_CHECK(weft_coll_run(ctx, &gather, 1));
    *use_ipc = false;
    for (int q = 0; q < n; q++) {
        if (!all[q].ok) {
            all[q].why[sizeof(all[q].why) - 1] = '\0';
            snprintf(why, len, "rank %d cannot share its buffers by CUDA IPC: %s", q, all[q].why);
            return WEFT_OK;
        }
    }
    weft_result_t mapped = WEFT_OK;
    for (int q = 0; q < n && mapped == WEFT_OK; q++) {
        if (q == me) {
            d->peer_send[q] = (void *)(uintptr_t)op->sendbuf;
            d->peer_recv[q] = op->recvbuf;
            continue;
        }
        mapped = weft_ipc_import(d->ipc, q, &all[q].send, &d->peer_send[q]);
        if (mapped == WEFT_OK)
            mapped = weft_ipc_import(d->ipc, q, &all[q].recv, &d->peer_recv[q]);
    }
    char my_why[160] = "";
    if (mapped != WEFT_OK)
        snprintf(my_why, sizeof(my_why), "%s", weft_error_message());
    int bad;
    WEFT_CHECK(status_allgather(ctx, d, (int32_t)mapped, &bad));
    if (bad >= 0) {
        if (bad == me)
            snprintf(why, len, "%s", my_why);
        else
            snprintf(why, len, "rank %d could not map its peers' buffers (its log says why)",
                     bad);
        return WEFT_OK;
    }
    *use_ipc = true;
    return WEFT_OK;
}

/* Reduce-scatter then allgather through the peers' mappings, on the internal stream.
 *
 * In place (sendbuf == recvbuf on some ranks) needs no copy, because of who touches what:
 * in phase 2 rank r writes only chunk r of its own buffer, and chunk r of any sendbuf is read
 * only by rank r (in phase 2), which reads its own chunk r first, before its first write. Phase
 * 3 writes chunks q != r of rank r's buffer, which the others read only as send data in phase 2;
 * every rank finished phase 2 (its stream synchronized) before the first status allgather, so
 * those reads are over. Phase 3 reads chunk q of rank q's recvbuf, final since that same
 * allgather and written by nobody until the second, after which the streams go on. */
static weft_result_t phases(struct weft_coll_ctx *ctx, struct weft_dev_allreduce *d,
                            const struct weft_coll_op *op, double timeout_s)
{
    const int n = ctx->nranks, me = ctx->rank;
    const size_t es = weft_dtype_size(op->dtype);
    const size_t cnt = weft_coll_part_count(op->count, (size_t)n, (size_t)me);
    const size_t off = weft_coll_part_offset(op->count, (size_t)n, (size_t)me) * es;
    char *dst = (char *)op->recvbuf + off;
    void *stream = weft_ipc_stream(d->ipc);

    /* Phase 2: my chunk, reduced over every rank's sendbuf, starting from my own. */
    weft_result_t r = WEFT_OK;
    if (cnt > 0 && n == 1) {
        r = weft_ipc_copy(d->ipc, dst, (const char *)op->sendbuf + off, cnt * es);
    } else if (cnt > 0) {
        const char *first = (const char *)d->peer_send[me] + off;
        const char *second = (const char *)d->peer_send[(me + 1) % n] + off;
        r = weft_gpu_reduce(dst, first, second, cnt, op->dtype, op->op, stream);
        for (int k = 2; k < n && r == WEFT_OK; k++) {
            const char *src = (const char *)d->peer_send[(me + k) % n] + off;
            r = weft_gpu_reduce(dst, dst, src, cnt, op->dtype, op->op, stream);
        }
        if (r == WEFT_OK && op->op == WEFT_AVG)
            r = weft_ipc_avg_finish(d->ipc, dst, cnt, op->dtype, n);
    }
    if (r == WEFT_OK)
        r = weft_ipc_sync(d->ipc, timeout_s);
    WEFT_CHECK(all_passed(ctx, d, r, "its part of the device reduction"));

    /* Phase 3: every other chunk, from its owner's recvbuf. */
    for (int q = 0; q < n && r == WEFT_OK; q++) {
        const size_t qcnt = weft_coll_part_count(op->count, (size_t)n, (size_t)q);
        const size_t qoff = weft_coll_part_offset(op->count, (size_t)n, (size_t)q) * es;
        if (q != me && qcnt > 0)
            r = weft_ipc_copy(d->ipc, (char *)op->recvbuf + qoff,
                              (const char *)d->peer_recv[q] + qoff, qcnt * es);
    }
    if (r == WEFT_OK)
        r = weft_ipc_sync(d->ipc, timeout_s);
    /* Until every rank is past phase 3, peers may still read my recvbuf. */
    return all_passed(ctx, d, r, "to gather the reduced chunks");
}

/* The fallback, as the stream path stages: device buffers copied through pinned memory (host
 * and managed ones used in place), the host allreduce between. The user's stream waits for
 * this operation, so the copies run on the internal stream. */
static weft_result_t staged(struct weft_coll_ctx *ctx, struct weft_dev_allreduce *d,
                            const struct weft_coll_op *op, double timeout_s)
{
    const size_t bytes = op->count * weft_dtype_size(op->dtype);
    const bool send_dev = weft_gpu_pointer_kind(op->sendbuf) == WEFT_GPU_MEM_DEVICE;
    const bool recv_dev = weft_gpu_pointer_kind(op->recvbuf) == WEFT_GPU_MEM_DEVICE;
    const bool in_place = op->sendbuf == op->recvbuf;
    struct weft_coll_op host = *op;
    if (send_dev || recv_dev) {
        if (!d->ipc)
            return WEFT_ERROR(WEFT_ERR_SYSTEM, "weft_allreduce: rank %d: cannot stage: %s",
                              ctx->rank, d->setup_error);
        const size_t recv_at = in_place || !send_dev ? 0 : weft_coll_align_up(bytes);
        if (recv_at && bytes > SIZE_MAX - recv_at)
            return WEFT_ERROR(WEFT_ERR_INVALID_ARG, "weft_allreduce: %zu bytes overflow", bytes);
        char *scratch;
        WEFT_CHECK(weft_ipc_scratch(d->ipc, recv_at + bytes, (void **)&scratch));
        if (send_dev) {
            host.sendbuf = scratch;
            WEFT_CHECK(weft_ipc_copy(d->ipc, scratch, op->sendbuf, bytes));
            WEFT_CHECK(weft_ipc_sync(d->ipc, timeout_s));
        }
        if (recv_dev)
            host.recvbuf = in_place ? scratch : scratch + recv_at;
    }
    WEFT_CHECK(weft_coll_run(ctx, &host, 1));
    if (recv_dev) {
        WEFT_CHECK(weft_ipc_copy(d->ipc, op->recvbuf, host.recvbuf, bytes));
        WEFT_CHECK(weft_ipc_sync(d->ipc, timeout_s));
    }
    return WEFT_OK;
}

weft_result_t weft_dev_allreduce(struct weft_coll_ctx *ctx, struct weft_dev_allreduce **state,
                                 const struct weft_coll_op *op, double timeout_s)
{
    if (!*state)
        WEFT_CHECK(state_create(ctx, state));
    struct weft_dev_allreduce *d = *state;
    bool use_ipc = false;
    char why[320] = "";
    WEFT_CHECK(decide(ctx, d, op, &use_ipc, why, sizeof(why)));
    const enum path path = use_ipc ? PATH_IPC : PATH_STAGED;
    if (path != d->logged) {
        if (use_ipc)
            WEFT_INFO(GPU,
                      "rank %d: allreduce on device buffers, %d ranks on one host: reduced on "
                      "the GPUs through CUDA IPC (this rank on GPU %d)",
                      ctx->rank, ctx->nranks, weft_ipc_device(d->ipc));
        else
            WEFT_INFO(GPU,
                      "rank %d: allreduce on device buffers, %d ranks on one host: staged "
                      "through pinned host memory, because %s",
                      ctx->rank, ctx->nranks, why);
        d->logged = path;
    }
    return use_ipc ? phases(ctx, d, op, timeout_s) : staged(ctx, d, op, timeout_s);
}
