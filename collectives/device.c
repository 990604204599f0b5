/*
 * device.c - the device collective's entry: the per-communicator state, the chunking rule,
 * the status barrier both ways use, and the choice between CUDA IPC and staging, logged once
 * per collective and way.
 */
#include "collectives/device_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "collectives/coll_internal.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"

enum way { WAY_STAGED, WAY_IPC };

weft_result_t weft_dev_coll_create(struct weft_coll_ctx *ctx, struct weft_dev_coll **out)
{
    const size_t n = (size_t)ctx->nranks;
    struct weft_dev_coll *d = calloc(1, sizeof(*d));
    if (d) {
        d->records = calloc(n + 1, sizeof(*d->records));
        d->status = calloc(n + 1, sizeof(*d->status));
        d->peer_send = calloc(n, sizeof(void *));
        d->peer_recv = calloc(n, sizeof(void *));
        d->inputs = calloc(n, sizeof(char *));
        d->last = calloc(n, sizeof(*d->last));
    }
    if (!d || !d->records || !d->status || !d->peer_send || !d->peer_recv || !d->inputs ||
        !d->last) {
        weft_dev_coll_destroy(d);
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: device collective state", ctx->rank);
    }
    /* Without it neither way works; the failure is reported by the call that needs it, and
     * on the IPC way to every rank first, so that all of them stage or fail together. */
    if (weft_ipc_create(ctx->rank, ctx->nranks, &d->ipc) != WEFT_OK) {
        d->ipc = NULL;
        snprintf(d->setup_error, sizeof(d->setup_error), "%s", weft_error_message());
    }
    void *scratch;
    if (d->ipc && weft_ipc_scratch(d->ipc, weft_dev_staged_scratch_bytes(), &scratch) != WEFT_OK)
        WEFT_WARN(GPU, "rank %d: %s; staging will pin memory when a call needs it",
                  ctx->rank, weft_error_message());
    *out = d;
    return WEFT_OK;
}

void weft_dev_coll_destroy(struct weft_dev_coll *d)
{
    if (!d)
        return;
    weft_ipc_destroy(d->ipc);
    free(d->records);
    free(d->status);
    free(d->peer_send);
    free(d->peer_recv);
    free(d->inputs);
    free(d->last);
    free(d);
}

size_t weft_dev_coll_chunks(const struct weft_coll_op *op, int nranks)
{
    const size_t es = weft_dtype_size(op->dtype);
    const size_t sb = weft_coll_send_blocks(op->kind, nranks);
    const size_t rb = weft_coll_recv_blocks(op->kind, nranks);
    const size_t row = es * (sb > rb ? sb : rb); /* bytes of one element of every block */
    size_t per_chunk = row ? weft_config_size(WEFT_CFG_GPU_CHUNK_SIZE) / row : 0;
    if (per_chunk == 0)
        per_chunk = 1;
    return op->count ? (op->count + per_chunk - 1) / per_chunk : 1;
}

weft_result_t weft_dev_status(struct weft_coll_ctx *ctx, struct weft_dev_coll *d,
                              weft_result_t mine, int *bad)
{
    const int n = ctx->nranks;
    d->status[n] = (int32_t)mine;
    const struct weft_coll_op op = {WEFT_COLL_ALLGATHER, &d->status[n], d->status,
                                    sizeof(int32_t), WEFT_UINT8, WEFT_SUM, 0};
    WEFT_CHECK(weft_coll_run(ctx, &op, 1));
    *bad = -1;
    for (int q = 0; q < n && *bad < 0; q++)
        if (d->status[q] != WEFT_OK)
            *bad = q;
    return WEFT_OK;
}

weft_result_t weft_dev_all_passed(struct weft_coll_ctx *ctx, struct weft_dev_coll *d,
                                  weft_result_t mine, const char *call, const char *step)
{
    int bad;
    WEFT_CHECK(weft_dev_status(ctx, d, mine, &bad));
    if (bad < 0)
        return WEFT_OK;
    if (bad == ctx->rank)
        return mine;
    return WEFT_ERROR(WEFT_ERR_REMOTE, "%s: rank %d: rank %d failed %s", call, ctx->rank, bad,
                      step);
}

static void log_way(struct weft_coll_ctx *ctx, struct weft_dev_coll *d,
                    const struct weft_coll_op *op, enum way way, const char *why)
{
    const uint32_t bit = 1u << (2 * (unsigned)op->kind + (unsigned)way);
    if (d->logged & bit)
        return;
    d->logged |= bit;
    const char *call = weft_coll_call_name(op->kind);
    if (way == WAY_IPC)
        WEFT_INFO(GPU, "rank %d: %s on device buffers, %d ranks on one host: on the GPUs "
                       "through CUDA IPC (this rank on GPU %d)",
                  ctx->rank, call, ctx->nranks, weft_ipc_device(d->ipc));
    else
        WEFT_INFO(GPU, "rank %d: %s on device buffers: staged through pinned host memory in "
                       "chunks of up to WEFT_GPU_CHUNK_SIZE=%zu bytes per buffer, because %s",
                  ctx->rank, call, weft_config_size(WEFT_CFG_GPU_CHUNK_SIZE), why);
}

weft_result_t weft_dev_coll_run(struct weft_coll_ctx *ctx, struct weft_dev_coll **state,
                                const struct weft_coll_op *op, bool try_ipc, double timeout_s)
{
    if (!*state)
        WEFT_CHECK(weft_dev_coll_create(ctx, state));
    struct weft_dev_coll *d = *state;
    bool use_ipc = false;
    char why[320];
    if (try_ipc)
        WEFT_CHECK(weft_dev_ipc_decide(ctx, d, op, &use_ipc, why, sizeof(why)));
    else if (weft_net_nhosts(ctx->net) > 1)
        snprintf(why, sizeof(why), "the ranks span %d hosts", weft_net_nhosts(ctx->net));
    else
        snprintf(why, sizeof(why), "WEFT_GPU_IPC=0");
    log_way(ctx, d, op, use_ipc ? WAY_IPC : WAY_STAGED, why);
    if (use_ipc)
        return weft_dev_ipc_run(ctx, d, op, timeout_s);
    if (!d->ipc)
        return WEFT_ERROR(WEFT_ERR_SYSTEM, "%s: rank %d: cannot stage device buffers: %s",
                          weft_coll_call_name(op->kind), ctx->rank, d->setup_error);
    return weft_dev_staged_run(ctx, d, op, timeout_s);
}
