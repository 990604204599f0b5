/*
 * avg_wide.c - int8/uint8 AVG without wrap-around: each chunk is widened to int32, summed by
 * the ordinary algorithms, divided and narrowed, through a bounded scratch of its own.
 */
#include "collectives/coll_internal.h"
#include "core/error.h"
#include "core/reduce.h"

/* int32 elements of the wide scratch, all blocks of a chunk together: 1 MiB. */
#define WIDE_ELEMS ((size_t)1 << 18)
/* 255 * nranks must fit the int32 sum. */
#define WIDE_MAX_RANKS (INT32_MAX / 255)

bool weft_coll_avg_widens(const struct weft_coll_op *op)
{
    return op->op == WEFT_AVG && weft_coll_reduces(op->kind) &&
           (op->dtype == WEFT_INT8 || op->dtype == WEFT_UINT8);
}

static weft_result_t wide_scratch(struct weft_coll_ctx *ctx, size_t bytes, int32_t **buf)
{
    if (bytes > ctx->wide_size) {
        void *p = aligned_alloc(WEFT_COLL_ALIGN, weft_coll_align_up(bytes));
        if (!p)
            return WEFT_ERROR(WEFT_ERR_NO_MEMORY,
                              "rank %d: cannot allocate %zu bytes to average 8-bit integers",
                              ctx->rank, bytes);
        weft_coll_keep_registered(ctx, &ctx->wide_reg, p, weft_coll_align_up(bytes));
        free(ctx->wide);
        ctx->wide = p;
        ctx->wide_size = weft_coll_align_up(bytes);
    }
    *buf = ctx->wide;
    return WEFT_OK;
}

weft_result_t weft_coll_avg_wide(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const int n = ctx->nranks;
    if (n > WIDE_MAX_RANKS)
        return WEFT_ERROR(WEFT_ERR_UNSUPPORTED,
                          "%s: rank %d: %s AVG sums in int32, which holds up to %d ranks, not %d",
                          weft_coll_call_name(op->kind), ctx->rank, weft_dtype_name(op->dtype),
                          WIDE_MAX_RANKS, n);
    const bool send = weft_coll_uses_send(op, ctx->rank), recv = weft_coll_uses_recv(op, ctx->rank);
    const size_t sblocks = weft_coll_send_blocks(op->kind, n);
    const size_t rblocks = weft_coll_recv_blocks(op->kind, n);
    size_t per_chunk = WIDE_ELEMS / (sblocks + rblocks);
    if (per_chunk == 0)
        per_chunk = 1;
    if (per_chunk > op->count)
        per_chunk = op->count;
    int32_t *wide = NULL;
    WEFT_CHECK(wide_scratch(ctx, (sblocks + rblocks) * per_chunk * sizeof(int32_t), &wide));
    int32_t *wsend = wide, *wrecv = wide + sblocks * per_chunk;
    const char *src = op->sendbuf;
    char *dst = op->recvbuf; /* elements are bytes */

    /* Every rank cuts the same chunks (the count is the same), so the calls pair up. In place,
     * chunk c reads only the elements it then writes (reduce_scatter: its own block's). */
    for (size_t c0 = 0; c0 < op->count; c0 += per_chunk) {
        const size_t m = op->count - c0 < per_chunk ? op->count - c0 : per_chunk;
        for (size_t b = 0; send && b < sblocks; b++)
            weft_reduce_widen_i32(wsend + b * m, src + b * op->count + c0, op->dtype, m);
        const struct weft_coll_op sum = {op->kind, send ? wsend : NULL, recv ? wrecv : NULL,
                                         m, WEFT_INT32, WEFT_SUM, op->root};
        WEFT_CHECK(weft_coll_collective(ctx, &sum));
        if (recv)
            weft_reduce_avg_narrow_i32(dst + c0, op->dtype, wrecv, m, n);
    }
    return WEFT_OK;
}
