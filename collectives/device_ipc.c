/*
 * device_ipc.c - collectives on device buffers among ranks of one host, through CUDA IPC:
 * every rank maps the peers' buffers it reads (or, for reduce, writes) and its GPU work runs
 * on the internal stream. Host steps: the decision (a record allgather, then a map check unless
 * every rank's records are the last call's), then a status barrier after each phase, after
 * which the peers may reuse their buffers.
 *
 * Who touches what (B = count elements of a block; "part p" = the p-th of n near-equal parts):
 *   allreduce       rank r reduces part r of every sendbuf into its recvbuf, then copies part
 *                   q of rank q's recvbuf, for every q (README has the HBM bytes of each).
 *   reduce_scatter  rank r reduces block r of every sendbuf into its recvbuf.
 *   reduce          rank r reduces part r of every sendbuf into part r of the root's recvbuf.
 *   broadcast       every rank copies the root's sendbuf into its recvbuf.
 *   allgather       rank r copies every rank q's sendbuf into block q of its recvbuf.
 *   alltoall        rank r copies block r of rank q's sendbuf into block q of its recvbuf.
 * In place is allowed where a rank's writes cannot meet another rank's reads
 * (weft_coll_layout_ok, which the API also enforces: other overlaps are refused before they
 * get here; a rank that still sees one sends every rank the staged way).
 */
#include "collectives/device_internal.h"

#include <stdio.h>
#include <string.h>

#include "collectives/coll_internal.h"
#include "core/error.h"
#include "core/log.h"
#include "gpu/gpu.h"

/* Whether this rank maps rank q's sendbuf / recvbuf for op. */
static bool reads_send(const struct weft_coll_op *op, int q)
{
    return op->kind != WEFT_COLL_BROADCAST || q == op->root;
}

static bool maps_recv(const struct weft_coll_op *op, int q)
{
    return op->kind == WEFT_COLL_ALLREDUCE || (op->kind == WEFT_COLL_REDUCE && q == op->root);
}

/* This rank's record: can it share the buffers it uses, and where are they. */
static void describe_mine(struct weft_coll_ctx *ctx, const struct weft_dev_coll *d,
                          const struct weft_coll_op *op, struct weft_dev_record *rec)
{
    const int me = ctx->rank;
    memset(rec, 0, sizeof(*rec));
    rec->device = d->ipc ? weft_ipc_device(d->ipc) : -1;
    const bool send = weft_coll_uses_send(op, me), recv = weft_coll_uses_recv(op, me);
    const size_t es = weft_dtype_size(op->dtype);
    const char *why = NULL;
    if (!d->ipc)
        why = d->setup_error;
    else if ((send && weft_gpu_pointer_kind(op->sendbuf) != WEFT_GPU_MEM_DEVICE) ||
             (recv && weft_gpu_pointer_kind(op->recvbuf) != WEFT_GPU_MEM_DEVICE))
        why = "a buffer is host or managed memory, not cudaMalloc'd device memory";
    else if ((send && (uintptr_t)op->sendbuf % es) || (recv && (uintptr_t)op->recvbuf % es))
        why = "a buffer is not aligned to its elements";
    else if (!weft_coll_layout_ok(op, me, ctx->nranks, NULL, 0))
        why = "its sendbuf and recvbuf overlap in a way only staging serves";
    else if ((send && weft_ipc_export(d->ipc, op->sendbuf, &rec->send) != WEFT_OK) ||
             (recv && weft_ipc_export(d->ipc, op->recvbuf, &rec->recv) != WEFT_OK))
        why = weft_error_message();
    rec->ok = why == NULL;
    if (why)
        snprintf(rec->why, sizeof(rec->why), "%s", why);
}

/* Maps what this rank reads or writes of every peer: WEFT_OK or the first failure. */
static weft_result_t map_peers(struct weft_coll_ctx *ctx, struct weft_dev_coll *d,
                               const struct weft_coll_op *op)
{
    const struct weft_dev_record *all = d->records;
    for (int q = 0; q < ctx->nranks; q++) {
        d->peer_send[q] = d->peer_recv[q] = NULL;
        if (q == ctx->rank) {
            d->peer_send[q] = (void *)(uintptr_t)op->sendbuf;
            d->peer_recv[q] = op->recvbuf;
            continue;
        }
        if (reads_send(op, q))
            WEFT_CHECK(weft_ipc_import(d->ipc, q, &all[q].send, &d->peer_send[q]));
        if (maps_recv(op, q))
            WEFT_CHECK(weft_ipc_import(d->ipc, q, &all[q].recv, &d->peer_recv[q]));
    }
    return WEFT_OK;
}

weft_result_t weft_dev_ipc_decide(struct weft_coll_ctx *ctx, struct weft_dev_coll *d,
                                  const struct weft_coll_op *op, bool *use_ipc, char *why,
                                  size_t len)
{
    const int n = ctx->nranks, me = ctx->rank;
    struct weft_dev_record *all = d->records, *mine = &d->records[n];
    *use_ipc = false;
    /* The device kernels sum in the element type, which wraps for 8-bit AVG; the staged way
     * averages exactly on the host (avg_wide.c). The op is the same on every rank, so every
     * rank stages without asking the others. */
    if (weft_coll_avg_widens(op)) {
        snprintf(why, len, "%s AVG averages in a wider type on the host",
                 weft_dtype_name(op->dtype));
        return WEFT_OK;
    }
    describe_mine(ctx, d, op, mine);
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
    /* Equal on every rank: they all compare the same allgathered records with the same. */
    const bool again = d->last_valid && d->last_kind == op->kind && d->last_root == op->root &&
                       memcmp(d->last, all, (size_t)n * sizeof(*all)) == 0;
    if (again) {
        d->peer_send[me] = (void *)(uintptr_t)op->sendbuf;
        d->peer_recv[me] = op->recvbuf;
        *use_ipc = true;
        return WEFT_OK;
    }
    d->last_valid = false;
    const weft_result_t mapped = map_peers(ctx, d, op);
    char my_why[160] = "";
    if (mapped != WEFT_OK)
        snprintf(my_why, sizeof(my_why), "%s", weft_error_message());
    int bad;
    WEFT_CHECK(weft_dev_status(ctx, d, mapped, &bad));
    if (bad >= 0) {
        if (bad == me)
            snprintf(why, len, "%s", my_why);
        else
            snprintf(why, len, "rank %d could not map its peers' buffers (its log says why)",
                     bad);
        return WEFT_OK;
    }
    memcpy(d->last, all, (size_t)n * sizeof(*all));
    d->last_valid = true;
    d->last_kind = op->kind;
    d->last_root = op->root;
    *use_ipc = true;
    return WEFT_OK;
}

/* dst = src[0] op src[1] op ... op src[n-1] over cnt elements, each input read once; dst may
 * alias src[0] only. */
static weft_result_t reduce_all(struct weft_dev_coll *d, const struct weft_coll_op *op, void *dst,
                                const char *const *src, int n, size_t cnt)
{
    if (cnt == 0)
        return WEFT_OK;
    void *stream = weft_ipc_stream(d->ipc);
    WEFT_CHECK(weft_gpu_reduce_n(dst, (const void *const *)src, n, cnt, op->dtype, op->op,
                                 stream));
    if (op->op == WEFT_AVG)
        WEFT_CHECK(weft_gpu_avg_finish(dst, cnt, op->dtype, n, stream));
    return WEFT_OK;
}

/* The inputs of a reduction at byte `off` of every sendbuf, `first`'s (the one dst may alias)
 * first. */
static const char *const *inputs(struct weft_coll_ctx *ctx, struct weft_dev_coll *d, int first,
                                 size_t off)
{
    for (int k = 0; k < ctx->nranks; k++)
        d->inputs[k] = (const char *)d->peer_send[(first + k) % ctx->nranks] + off;
    return d->inputs;
}

/* The first phase: every reduction, and every copy that needs no other rank's result. */
static weft_result_t phase_one(struct weft_coll_ctx *ctx, struct weft_dev_coll *d,
                               const struct weft_coll_op *op)
{
    const int n = ctx->nranks, me = ctx->rank;
    const size_t es = weft_dtype_size(op->dtype), block = op->count * es;
    const size_t part = weft_coll_part_count(op->count, (size_t)n, (size_t)me);
    const size_t part_at = weft_coll_part_offset(op->count, (size_t)n, (size_t)me) * es;
    char *recv = op->recvbuf;
    switch (op->kind) {
    case WEFT_COLL_ALLREDUCE:
        return reduce_all(d, op, recv + part_at, inputs(ctx, d, me, part_at), n, part);
    case WEFT_COLL_REDUCE:
        return reduce_all(d, op, (char *)d->peer_recv[op->root] + part_at,
                          inputs(ctx, d, op->root, part_at), n, part);
    case WEFT_COLL_REDUCE_SCATTER:
        return reduce_all(d, op, recv, inputs(ctx, d, me, (size_t)me * block), n, op->count);
    case WEFT_COLL_BROADCAST:
        return weft_ipc_copy(d->ipc, recv, d->peer_send[op->root], block);
    case WEFT_COLL_ALLGATHER:
        for (int q = 0; q < n; q++)
            WEFT_CHECK(weft_ipc_copy(d->ipc, recv + (size_t)q * block, d->peer_send[q], block));
        return WEFT_OK;
    case WEFT_COLL_ALLTOALL:
        for (int q = 0; q < n; q++)
            WEFT_CHECK(weft_ipc_copy(d->ipc, recv + (size_t)q * block,
                                     (const char *)d->peer_send[q] + (size_t)me * block, block));
        return WEFT_OK;
    default:
        return WEFT_ERROR(WEFT_ERR_INTERNAL, "rank %d: %s has no CUDA IPC way", me,
                          weft_coll_call_name(op->kind));
    }
}

/* Allreduce's second phase: every other rank's reduced part, from its recvbuf. */
static weft_result_t gather_parts(struct weft_coll_ctx *ctx, struct weft_dev_coll *d,
                                  const struct weft_coll_op *op)
{
    const size_t n = (size_t)ctx->nranks, es = weft_dtype_size(op->dtype);
    for (size_t q = 0; q < n; q++) {
        const size_t cnt = weft_coll_part_count(op->count, n, q);
        const size_t at = weft_coll_part_offset(op->count, n, q) * es;
        if (q != (size_t)ctx->rank && cnt > 0)
            WEFT_CHECK(weft_ipc_copy(d->ipc, (char *)op->recvbuf + at,
                                     (const char *)d->peer_recv[q] + at, cnt * es));
    }
    return WEFT_OK;
}

/* Each phase ends with this rank's stream drained and a status barrier: after it, every
 * rank's writes of the phase are done and every read of the phase is over. */
weft_result_t weft_dev_ipc_run(struct weft_coll_ctx *ctx, struct weft_dev_coll *d,
                               const struct weft_coll_op *op, double timeout_s)
{
    const char *call = weft_coll_call_name(op->kind);
    weft_result_t r = phase_one(ctx, d, op);
    if (r == WEFT_OK)
        r = weft_ipc_sync(d->ipc, timeout_s);
    WEFT_CHECK(weft_dev_all_passed(ctx, d, r, call, "its part of the device work"));
    if (op->kind != WEFT_COLL_ALLREDUCE)
        return WEFT_OK;
    r = gather_parts(ctx, d, op);
    if (r == WEFT_OK)
        r = weft_ipc_sync(d->ipc, timeout_s);
    /* Until every rank is past this, peers may still read my recvbuf. */
    return weft_dev_all_passed(ctx, d, r, call, "to gather the reduced parts");
}
