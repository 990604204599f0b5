/*
 * binomial broadcast: ceil(log2 n) steps; a rank sends S bytes to each of its <= log2 n
 * children. chain broadcast: n-1 hops pipelined in C chunks (n-2+C chunk times); each rank
 * but the last sends S bytes once. The tree is for small messages, the chain for large.
 */
#include "collectives/coll_internal.h"
#include "core/error.h"

weft_result_t weft_coll_broadcast_tree(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const int n = ctx->nranks, root = op->root;
    const int vrank = weft_coll_vrank(ctx, root);
    const size_t len = op->count * weft_dtype_size(op->dtype);
    struct weft_request reqs[32];
    struct weft_request *list[32];
    int mask = 1, nreq = 0;
    weft_result_t r;

    if (vrank == 0)
        weft_coll_copy(op->recvbuf, op->sendbuf, len);
    /* The parent is vrank with its lowest set bit cleared; children are vrank + 2^j below. */
    while (mask < n) {
        if (vrank & mask) {
            const int parent = weft_coll_vpeer(ctx, root, vrank - mask);
            WEFT_CHECK(weft_coll_recv(ctx, WEFT_COLL_BROADCAST, parent, op->recvbuf, len,
                                      (uint32_t)__builtin_ctz((unsigned)mask)));
            break;
        }
        mask <<= 1;
    }
    /* Posted together rather than as blocking steps, so no child waits for a sibling's. */
    for (mask >>= 1; mask > 0; mask >>= 1) {
        if (vrank + mask >= n)
            continue;
        int child = weft_coll_vpeer(ctx, root, vrank + mask);
        list[nreq] = &reqs[nreq];
        WEFT_CHECK_GOTO(weft_net_isend(ctx->net, child, op->recvbuf, len,
                                       weft_coll_tag(WEFT_COLL_BROADCAST, ctx->seq,
                                                     (uint32_t)__builtin_ctz((unsigned)mask)),
                                       &reqs[nreq]),
                        r, fail);
        nreq++;
    }
    if (nreq > 0)
        WEFT_CHECK_GOTO(weft_net_wait(ctx->net, list, (size_t)nreq), r, fail);
    return WEFT_OK;
fail:
    weft_coll_fail(ctx);
    return r;
}

struct chain_plan {
    const char *src; /* root: the user's sendbuf; others: recvbuf */
    char *dst;
    size_t count, es, nchunks;
};

/* Chunk k sits at the same offset in src and dst. */
static size_t chunk_at(const struct chain_plan *p, size_t k, size_t *len)
{
    *len = weft_coll_part_count(p->count, p->nchunks, k) * p->es;
    return weft_coll_part_offset(p->count, p->nchunks, k) * p->es;
}

static void chain_send_buf(void *arg, size_t k, const void **buf, size_t *len)
{
    const struct chain_plan *p = arg;
    *buf = p->src + chunk_at(p, k, len);
}

static void chain_recv_buf(void *arg, size_t k, void **buf, size_t *len)
{
    const struct chain_plan *p = arg;
    *buf = p->dst + chunk_at(p, k, len);
}

weft_result_t weft_coll_broadcast_chain(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const int n = ctx->nranks, root = op->root;
    const int vrank = weft_coll_vrank(ctx, root);
    const size_t es = weft_dtype_size(op->dtype);
    struct chain_plan p = {
        .src = vrank == 0 ? op->sendbuf : op->recvbuf, .dst = op->recvbuf,
        .count = op->count, .es = es,
        .nchunks = weft_coll_nchunks(ctx, op->count, es),
    };
    struct weft_pipe pipe = {
        .ctx = ctx,
        .kind = WEFT_COLL_BROADCAST,
        .send_peer = vrank + 1 < n ? weft_coll_vpeer(ctx, root, vrank + 1) : -1,
        .recv_peer = vrank > 0 ? weft_coll_vpeer(ctx, root, vrank - 1) : -1,
        .nmsg = p.nchunks,
        .dep_free = vrank == 0 ? p.nchunks : 0,
        .dep_lag = 0,
        .depth = ctx->pipeline_depth,
        .arg = &p,
        .send_buf = chain_send_buf,
        .recv_buf = chain_recv_buf,
    };
    /* The root's own copy overlaps nothing, but it is one local memcpy. */
    if (vrank == 0)
        weft_coll_copy(op->recvbuf, op->sendbuf, op->count * es);
    WEFT_CHECK(weft_pipe_run(&pipe));
    return WEFT_OK;
}
