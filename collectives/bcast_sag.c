/*
 * scatter-allgather broadcast: a binomial scatter of n blocks from the root (ceil(log2 n)
 * steps, the root sends (n-1)/n * S bytes), then a pipelined ring allgather (n-1 steps, each
 * rank sends (n-1)/n * S). About 2S on the busiest link instead of the tree's S log2 n, and
 * no n-hop fill of a chain: for large messages. Ranks are numbered along the host-ordered
 * ring from the root (weft_coll_vrank), so the scatter's subtrees and the ring's hops stay
 * inside hosts where they can.
 */
#include "collectives/coll_internal.h"
#include "core/error.h"

weft_result_t weft_coll_broadcast_sag(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const int n = ctx->nranks, root = op->root;
    const int vrank = weft_coll_vrank(ctx, root);
    const size_t es = weft_dtype_size(op->dtype), count = op->count;
    char *buf = op->recvbuf;
    struct weft_request reqs[32];
    struct weft_request *list[32];
    int nreq = 0;
    weft_result_t r;

    /* Vrank v ends the scatter with block v; a subtree's blocks are contiguous. */
#define BLOCK_AT(v) (weft_coll_part_offset(count, (size_t)n, (size_t)(v)) * es)
    if (vrank == 0)
        weft_coll_copy(buf, op->sendbuf, count * es);
    int mask = 1;
    while (mask < n && !(vrank & mask))
        mask *= 2;
    if (vrank != 0) {
        const int end = vrank + mask < n ? vrank + mask : n;
        WEFT_CHECK(weft_coll_recv(ctx, WEFT_COLL_BROADCAST, weft_coll_vpeer(ctx, root, vrank - mask),
                                  buf + BLOCK_AT(vrank), BLOCK_AT(end) - BLOCK_AT(vrank),
                                  (uint32_t)__builtin_ctz((unsigned)mask)));
    }
    for (mask /= 2; mask > 0; mask /= 2) {
        if (vrank + mask >= n)
            continue;
        const int child = vrank + mask, end = child + mask < n ? child + mask : n;
        list[nreq] = &reqs[nreq];
        WEFT_CHECK_GOTO(weft_net_isend(ctx->net, weft_coll_vpeer(ctx, root, child),
                                       buf + BLOCK_AT(child), BLOCK_AT(end) - BLOCK_AT(child),
                                       weft_coll_tag(WEFT_COLL_BROADCAST, ctx->seq,
                                                     (uint32_t)__builtin_ctz((unsigned)mask)),
                                       &reqs[nreq]),
                        r, fail);
        nreq++;
    }
#undef BLOCK_AT
    if (nreq > 0)
        WEFT_CHECK_GOTO(weft_net_wait(ctx->net, list, (size_t)nreq), r, fail);
    /* The allgather's messages are numbered from 0 again: a sequence number of their own. */
    ctx->seq++;
    return weft_coll_ring_allgather_blocks(ctx, WEFT_COLL_BROADCAST, buf, count, es, root);
fail:
    weft_coll_fail(ctx);
    return r;
}
