/*
 * device_staged.c - a collective on device buffers through pinned host memory, pipelined:
 * the buffers are cut into chunks (a range of elements of every block, so the host runs the
 * same collective on each chunk), two staging slots alternate, and one internal stream
 * copies chunk k+1 in and chunk k-1 out while the host collective of chunk k is on the wire.
 *
 * Stream order makes slot reuse safe: chunk k+2's copy-in is enqueued after chunk k's
 * copy-out of the same slot, and the host waits for that copy-in (its mark) before it runs
 * chunk k+2, by when the copy-out is done too. Host and managed buffers are staged the same
 * way (cudaMemcpyDefault), so every rank cuts the same chunks whatever its buffers are.
 */
#include "collectives/device_internal.h"

#include <stdio.h>
#include <string.h>

#include "collectives/coll_internal.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"

#define SLOTS 2

_Static_assert(SLOTS <= WEFT_IPC_MARKS, "a mark per slot");

struct plan {
    const struct weft_coll_op *op;
    size_t es, per_chunk, nchunks;
    size_t send_rows, recv_rows; /* blocks staged: 0 when this rank does not use the buffer */
    bool in_place;               /* one staging area serves sendbuf and recvbuf */
    size_t recv_at, slot_bytes;  /* in a slot: sendbuf's chunk at 0, recvbuf's at recv_at */
    char *scratch;
};

static size_t chunk_len(const struct plan *p, size_t k)
{
    const size_t first = k * p->per_chunk;
    return p->op->count - first < p->per_chunk ? p->op->count - first : p->per_chunk;
}

static char *slot(const struct plan *p, size_t k)
{
    return p->scratch + (k % SLOTS) * p->slot_bytes;
}

/* Chunk k of every block of the user's buffer at `user` (blocks `count` elements apart) to
 * or from its slot, where the chunk's rows lie back to back. */
static weft_result_t copy_in(struct weft_dev_coll *d, const struct plan *p, size_t k)
{
    const size_t len = chunk_len(p, k) * p->es, pitch = p->op->count * p->es;
    const char *user = (const char *)p->op->sendbuf + k * p->per_chunk * p->es;
    if (p->send_rows)
        WEFT_CHECK(weft_ipc_copy_rows(d->ipc, slot(p, k), len, user, pitch, len,
                                      p->send_rows));
    return weft_ipc_mark(d->ipc, (int)(k % SLOTS));
}

static weft_result_t copy_out(struct weft_dev_coll *d, const struct plan *p, size_t k)
{
    const size_t len = chunk_len(p, k) * p->es, pitch = p->op->count * p->es;
    char *user = (char *)p->op->recvbuf + k * p->per_chunk * p->es;
    if (!p->recv_rows)
        return WEFT_OK;
    return weft_ipc_copy_rows(d->ipc, user, pitch, slot(p, k) + p->recv_at, len, len,
                              p->recv_rows);
}

static weft_result_t run_chunk(struct weft_coll_ctx *ctx, const struct plan *p, size_t k)
{
    struct weft_coll_op host = *p->op;
    host.count = chunk_len(p, k);
    host.sendbuf = p->send_rows ? slot(p, k) : NULL;
    host.recvbuf = p->recv_rows ? slot(p, k) + p->recv_at : NULL;
    return weft_coll_run(ctx, &host, 1);
}

static weft_result_t make_plan(struct weft_coll_ctx *ctx, struct weft_dev_coll *d,
                               const struct weft_coll_op *op, struct plan *p)
{
    const int n = ctx->nranks, me = ctx->rank;
    memset(p, 0, sizeof(*p));
    p->op = op;
    p->es = weft_dtype_size(op->dtype);
    p->nchunks = weft_dev_coll_chunks(op, n);
    p->per_chunk = (op->count + p->nchunks - 1) / p->nchunks;
    p->send_rows = weft_coll_uses_send(op, me) ? weft_coll_send_blocks(op->kind, n) : 0;
    p->recv_rows = weft_coll_uses_recv(op, me) ? weft_coll_recv_blocks(op->kind, n) : 0;
    /* A reduction or broadcast in place stays in place in staging (the host collectives take
     * it); any other overlap gets two areas, which is safe as chunks are disjoint columns. */
    p->in_place = p->send_rows == 1 && p->recv_rows == 1 && op->sendbuf == op->recvbuf;
    const size_t send_bytes = weft_coll_align_up(p->per_chunk * p->es * p->send_rows);
    const size_t recv_bytes = weft_coll_align_up(p->per_chunk * p->es * p->recv_rows);
    p->recv_at = p->in_place ? 0 : send_bytes;
    p->slot_bytes = p->in_place ? send_bytes : send_bytes + recv_bytes;
    return weft_ipc_scratch(d->ipc, SLOTS * (p->slot_bytes ? p->slot_bytes : 1),
                            (void **)&p->scratch);
}

/* A slot holds a chunk of sendbuf and one of recvbuf, each at most WEFT_GPU_CHUNK_SIZE (see
 * weft_dev_coll_chunks), each aligned. */
size_t weft_dev_staged_scratch_bytes(void)
{
    size_t chunk = weft_config_size(WEFT_CFG_GPU_CHUNK_SIZE);
    if (chunk > SIZE_MAX / 8)
        chunk = SIZE_MAX / 8;
    return SLOTS * 2 * weft_coll_align_up(chunk);
}

weft_result_t weft_dev_staged_run(struct weft_coll_ctx *ctx, struct weft_dev_coll *d,
                                  const struct weft_coll_op *op, double timeout_s)
{
    struct plan p;
    WEFT_CHECK(make_plan(ctx, d, op, &p));
    weft_result_t r = WEFT_OK;
    for (size_t k = 0; k < SLOTS && k < p.nchunks && r == WEFT_OK; k++)
        r = copy_in(d, &p, k);
    for (size_t k = 0; k < p.nchunks && r == WEFT_OK; k++) {
        r = weft_ipc_wait_mark(d->ipc, (int)(k % SLOTS), timeout_s);
        if (r == WEFT_OK)
            r = run_chunk(ctx, &p, k);
        if (r == WEFT_OK)
            r = copy_out(d, &p, k);
        if (r == WEFT_OK && k + SLOTS < p.nchunks)
            r = copy_in(d, &p, k + SLOTS);
    }
    if (r != WEFT_OK) {
        /* Nothing may still write the user's buffers once its stream goes on; the failure
         * reported is the first one. */
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", weft_error_message());
        if (weft_ipc_sync(d->ipc, timeout_s) != WEFT_OK)
            WEFT_WARN(GPU, "rank %d: after a failure, the staging copies did not drain: %s",
                      ctx->rank, weft_error_message());
        weft_error_restore(msg);
        return r;
    }
    WEFT_CHECK(weft_ipc_sync(d->ipc, timeout_s));
    WEFT_TRACE(GPU, "rank %d: %s staged in %zu chunk%s of %zu elements", ctx->rank,
               weft_coll_call_name(op->kind), p.nchunks, p.nchunks == 1 ? "" : "s", p.per_chunk);
    return WEFT_OK;
}
