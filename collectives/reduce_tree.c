/*
 * binomial reduce: ceil(log2 n) steps; each rank but the root sends S bytes once, and reduces
 * S bytes per child. chain reduce: n-1 hops pipelined in C chunks (n-2+C chunk times); each
 * rank but the root sends S bytes once. The tree is for small messages, the chain for large.
 */
#include "collectives/coll_internal.h"
#include "core/error.h"
#include "core/reduce.h"

weft_result_t weft_coll_reduce_tree(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const int n = ctx->nranks, root = op->root;
    const int vrank = weft_coll_vrank(ctx, root);
    const size_t len = op->count * weft_dtype_size(op->dtype);
    const void *cur = op->sendbuf; /* the partial of this rank's subtree so far */
    char *scratch;
    void *tmp, *acc;

    /* Non-roots have no output buffer: their partial lives in scratch after the slot for
     * the children's data. */
    WEFT_CHECK(weft_coll_scratch(ctx, 2 * weft_coll_align_up(len), (void **)&scratch));
    tmp = scratch;
    acc = vrank == 0 ? op->recvbuf : scratch + weft_coll_align_up(len);
    for (int mask = 1; mask < n; mask <<= 1) {
        const uint32_t step = (uint32_t)__builtin_ctz((unsigned)mask);
        if (vrank & mask) {
            int parent = weft_coll_vpeer(ctx, root, vrank - mask);
            return weft_coll_send(ctx, WEFT_COLL_REDUCE, parent, cur, len, step);
        }
        if (vrank + mask >= n)
            continue;
        const int child = weft_coll_vpeer(ctx, root, vrank + mask);
        WEFT_CHECK(weft_coll_recv(ctx, WEFT_COLL_REDUCE, child, tmp, len, step));
        weft_reduce_local(acc, cur, tmp, op->count, op->dtype, op->op);
        cur = acc;
    }
    if (op->op == WEFT_AVG)
        weft_reduce_avg_finish(op->recvbuf, op->count, op->dtype, n);
    return WEFT_OK;
}

struct chain_plan {
    const char *src;
    char *dst; /* root: recvbuf */
    char *tmp;
    size_t slot_bytes, depth;
    size_t count, es, nchunks;
    weft_dtype_t dtype;
    weft_op_t op;
    int n;
    bool root, first;
};

static size_t chunk_off(const struct chain_plan *p, size_t k)
{
    return weft_coll_part_offset(p->count, p->nchunks, k) * p->es;
}

static size_t chunk_elems(const struct chain_plan *p, size_t k)
{
    return weft_coll_part_count(p->count, p->nchunks, k);
}

static void chain_send_buf(void *arg, size_t k, const void **buf, size_t *len)
{
    const struct chain_plan *p = arg;
    *buf = p->first ? p->src + chunk_off(p, k) : p->tmp + (k % p->depth) * p->slot_bytes;
    *len = chunk_elems(p, k) * p->es;
}

static void chain_recv_buf(void *arg, size_t k, void **buf, size_t *len)
{
    const struct chain_plan *p = arg;
    *buf = p->tmp + (k % p->depth) * p->slot_bytes;
    *len = chunk_elems(p, k) * p->es;
}

static void chain_process(void *arg, size_t k)
{
    const struct chain_plan *p = arg;
    char *slot = p->tmp + (k % p->depth) * p->slot_bytes;
    const size_t elems = chunk_elems(p, k);
    char *dst = p->root ? p->dst + chunk_off(p, k) : slot;
    weft_reduce_local(dst, p->src + chunk_off(p, k), slot, elems, p->dtype, p->op);
    if (p->root && p->op == WEFT_AVG)
        weft_reduce_avg_finish(dst, elems, p->dtype, p->n);
}

weft_result_t weft_coll_reduce_chain(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const int n = ctx->nranks, root = op->root;
    const int vrank = weft_coll_vrank(ctx, root);
    const size_t es = weft_dtype_size(op->dtype);
    void *scratch = NULL;

    /* Data flows from vrank n-1 down to the root (vrank 0); each hop adds its own input. */
    struct chain_plan p = {
        .src = op->sendbuf, .dst = op->recvbuf, .depth = (size_t)ctx->pipeline_depth,
        .count = op->count, .es = es, .nchunks = weft_coll_nchunks(ctx, op->count, es),
        .dtype = op->dtype, .op = op->op, .n = n, .root = vrank == 0, .first = vrank == n - 1,
    };
    p.slot_bytes = weft_coll_align_up(((op->count + p.nchunks - 1) / p.nchunks) * es);
    if (!p.first && p.slot_bytes) {
        WEFT_CHECK(weft_coll_scratch(ctx, p.depth * p.slot_bytes, &scratch));
        p.tmp = scratch;
    }
    struct weft_pipe pipe = {
        .ctx = ctx,
        .kind = WEFT_COLL_REDUCE,
        .send_peer = vrank > 0 ? weft_coll_vpeer(ctx, root, vrank - 1) : -1,
        .recv_peer = vrank < n - 1 ? weft_coll_vpeer(ctx, root, vrank + 1) : -1,
        .nmsg = p.nchunks,
        .dep_free = p.first ? p.nchunks : 0,
        .dep_lag = 0,
        .slot_shared = !p.first && !p.root,
        .depth = ctx->pipeline_depth,
        .arg = &p,
        .send_buf = chain_send_buf,
        .recv_buf = chain_recv_buf,
        .process = chain_process,
    };
    WEFT_CHECK(weft_pipe_run(&pipe));
    return WEFT_OK;
}
