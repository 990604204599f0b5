/*
 * ring reduce-scatter: n-1 steps; each rank sends (n-1)/n * S bytes. ring allgather: n-1
 * steps; each rank sends (n-1) * S bytes (S: its block). ring allreduce = both: 2(n-1) steps;
 * each rank sends 2(n-1)/n * S bytes. Blocks are cut into chunks that flow as one pipeline,
 * so a chunk reduced in the last reduce-scatter step leaves at once in the allgather.
 */
#include "collectives/coll_internal.h"
#include "collectives/hier.h"
#include "collectives/host_order.h"
#include "core/error.h"
#include "core/log.h"
#include "core/reduce.h"

/* A buffer laid out in blocks: the whole vector, or only block `only` (when >= 0). */
struct ring_buf {
    char *base;
    int only;
};

struct ring_plan {
    int rank, n; /* rank: this rank's position in the ring, counted from ring_base */
    const int *ring;     /* the net's ranks by ring position (host order); NULL: by rank */
    int ring_base;       /* the ring position of position 0 */
    const int *block_of; /* data block at each ring position; NULL: the position itself */
    size_t count; /* elements of the whole vector (n blocks) */
    /* A channel's part of every block (ring_pair): blocks start `stride` elements apart in
     * whole-vector buffers, and the part `boff` elements into each block (in buffers of one
     * block too). stride 0: the blocks are the n parts of count, boff 0. */
    size_t stride, boff;
    size_t es;
    weft_dtype_t dtype;
    weft_op_t op;
    size_t nchunks; /* chunks per block; every block has the same number */
    size_t rs_steps, ag_steps;
    struct ring_buf src;   /* this rank's input */
    struct ring_buf inter; /* partial reductions of steps before the last */
    struct ring_buf final; /* the reduced block this rank owns */
    struct ring_buf out;   /* the allgather destination (whole vector) */
    char *tmp;             /* depth slots for received chunks */
    size_t slot_bytes;
    size_t depth;
};

static char *chunk_ptr(const struct ring_plan *p, struct ring_buf b, int block, size_t chunk,
                       size_t *elems)
{
    if (p->block_of)
        block = p->block_of[block];
    size_t bcount = weft_coll_part_count(p->count, (size_t)p->n, (size_t)block);
    size_t off = p->boff + weft_coll_part_offset(bcount, p->nchunks, chunk);
    *elems = weft_coll_part_count(bcount, p->nchunks, chunk);
    if (b.only < 0)
        off += p->stride ? (size_t)block * p->stride
                         : weft_coll_part_offset(p->count, (size_t)p->n, (size_t)block);
    return b.base + off * p->es;
}

/* Step t < rs_steps is a reduce-scatter step, the rest are allgather steps. The block
 * numbering makes this rank own the block of its position after the reduce-scatter. */
static int send_block(const struct ring_plan *p, size_t t)
{
    if (t < p->rs_steps)
        return weft_coll_mod(p->rank - 1 - (int)t, p->n);
    return weft_coll_mod(p->rank - (int)(t - p->rs_steps), p->n);
}

static int recv_block(const struct ring_plan *p, size_t t)
{
    return weft_coll_mod(send_block(p, t) - 1, p->n);
}

static void ring_send_buf(void *arg, size_t k, const void **buf, size_t *len)
{
    const struct ring_plan *p = arg;
    size_t t = k / p->nchunks, c = k % p->nchunks, elems;
    int b = send_block(p, t);
    struct ring_buf from;
    if (t == 0)
        from = p->src;
    else if (t < p->rs_steps)
        from = p->inter;
    else if (t == p->rs_steps && p->rs_steps > 0)
        from = p->final;
    else
        from = p->out;
    *buf = chunk_ptr(p, from, b, c, &elems);
    *len = elems * p->es;
}

static void ring_recv_buf(void *arg, size_t k, void **buf, size_t *len)
{
    const struct ring_plan *p = arg;
    size_t t = k / p->nchunks, c = k % p->nchunks, elems;
    if (t < p->rs_steps) {
        int b = recv_block(p, t);
        if (p->block_of)
            b = p->block_of[b];
        size_t bcount = weft_coll_part_count(p->count, (size_t)p->n, (size_t)b);
        elems = weft_coll_part_count(bcount, p->nchunks, c);
        *buf = p->tmp + (k % p->depth) * p->slot_bytes;
    } else {
        *buf = chunk_ptr(p, p->out, recv_block(p, t), c, &elems);
    }
    *len = elems * p->es;
}

static void ring_process(void *arg, size_t k)
{
    const struct ring_plan *p = arg;
    size_t t = k / p->nchunks, c = k % p->nchunks, elems;
    if (t >= p->rs_steps)
        return; /* allgather chunks land in place */
    int b = recv_block(p, t);
    const bool last = t + 1 == p->rs_steps;
    char *dst = chunk_ptr(p, last ? p->final : p->inter, b, c, &elems);
    const char *mine = chunk_ptr(p, p->src, b, c, &elems);
    const char *theirs = p->tmp + (k % p->depth) * p->slot_bytes;
    weft_reduce_local(dst, mine, theirs, elems, p->dtype, p->op);
    if (last && p->op == WEFT_AVG)
        weft_reduce_avg_finish(dst, elems, p->dtype, p->n);
}

/* Sizes the chunks and carves the scratch: receive slots, then (reduce-scatter only) room
 * for the partial sums that do not fit in the output. */
static size_t ring_size(const struct weft_coll_ctx *ctx, struct ring_plan *p)
{
    size_t maxblock = weft_coll_part_count(p->count, (size_t)p->n, 0);
    p->nchunks = weft_coll_nchunks(ctx, maxblock, p->es);
    p->depth = (size_t)ctx->pipeline_depth;
    p->slot_bytes = weft_coll_align_up(((maxblock + p->nchunks - 1) / p->nchunks) * p->es);
    return p->rs_steps ? p->depth * p->slot_bytes : 0;
}

static weft_result_t ring_setup(struct weft_coll_ctx *ctx, struct ring_plan *p, bool need_inter)
{
    void *scratch;
    size_t tmp_bytes = ring_size(ctx, p);
    size_t inter_bytes = need_inter ? weft_coll_align_up(p->count * p->es) : 0;
    if (tmp_bytes + inter_bytes == 0)
        return WEFT_OK;
    WEFT_CHECK(weft_coll_scratch(ctx, tmp_bytes + inter_bytes, &scratch));
    p->tmp = scratch;
    if (need_inter)
        p->inter = (struct ring_buf){(char *)scratch + tmp_bytes, -1};
    return WEFT_OK;
}

/* The rank `ahead` positions after this one: by ring position, or by rank when the plan has
 * no ring (its positions are then a renumbering that keeps the ranks' order). */
static int ring_peer(const struct weft_coll_ctx *ctx, const struct ring_plan *p, int ahead)
{
    if (!p->ring)
        return (ctx->rank + ahead) % ctx->nranks;
    return p->ring[(p->ring_base + p->rank + ahead) % p->n];
}

static struct weft_pipe ring_pipe(struct weft_coll_ctx *ctx, struct ring_plan *p,
                                  enum weft_coll_kind kind)
{
    return (struct weft_pipe){
        .ctx = ctx,
        .kind = kind,
        .send_peer = ring_peer(ctx, p, 1),
        .recv_peer = ring_peer(ctx, p, p->n - 1),
        .nmsg = (p->rs_steps + p->ag_steps) * p->nchunks,
        .dep_free = p->nchunks,
        .dep_lag = p->nchunks,
        .slot_shared = false,
        .depth = ctx->pipeline_depth,
        .arg = p,
        .send_buf = ring_send_buf,
        .recv_buf = ring_recv_buf,
        .process = ring_process,
    };
}

static weft_result_t ring_run(struct weft_coll_ctx *ctx, struct ring_plan *p,
                              enum weft_coll_kind kind, bool need_inter)
{
    WEFT_CHECK(ring_setup(ctx, p, need_inter));
    const struct weft_pipe pipe = ring_pipe(ctx, p, kind);
    return weft_pipe_run(&pipe);
}

/* WEFT_NCHANNELS=2: half the data goes round the ring, the other half round the reversed ring
 * at the same time. Each link then carries data both ways (full duplex) and each rank has
 * two connections busy instead of one; the bytes per rank are the same. Two rings the same
 * way round would send two streams to one peer, whose messages the transports match in
 * order: both ends would have to interleave them alike. */
static bool two_channels(const struct weft_coll_ctx *ctx, size_t halved)
{
    /* three ranks (two distinct neighbours) and something worth halving */
    return ctx->groups->nchannels > 1 && ctx->nranks > 2 && halved >= 2;
}

/* Channel c's plan from `base` (the whole call's): the c-th half of each block when `stride`
 * (blocks of `stride` elements, allgather and reduce-scatter), else the c-th half of the
 * vector. */
static struct ring_plan channel_plan(const struct weft_coll_ctx *ctx, const struct ring_plan *base,
                                     int c, size_t stride)
{
    struct ring_plan p = *base;
    const int n = ctx->nranks, pos = ctx->groups->ring_pos;
    const size_t whole = stride ? stride : base->count;
    const size_t h0 = weft_coll_part_count(whole, 2, 0), half = c ? whole - h0 : h0;
    p.rank = c ? n - 1 - pos : pos;
    p.ring = c ? ctx->groups->ring_rev : ctx->groups->ring;
    if (base->block_of)
        p.block_of = p.ring;
    if (stride) {
        p.count = half * (size_t)n;
        p.stride = stride;
        p.boff = c ? h0 : 0;
    } else {
        const size_t off = c ? h0 * base->es : 0;
        p.count = half;
        struct ring_buf *bufs[] = {&p.src, &p.inter, &p.final, &p.out};
        for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
            if (bufs[i]->base)
                bufs[i]->base += off;
    }
    return p;
}

/* Runs `base` as two channels (channel_plan); `inter_elems` of scratch for partial sums,
 * which both share (each writes its own halves). */
static weft_result_t ring_pair(struct weft_coll_ctx *ctx, const struct ring_plan *base,
                               enum weft_coll_kind kind, size_t stride, size_t inter_elems)
{
    struct ring_plan p[2] = {channel_plan(ctx, base, 0, stride),
                             channel_plan(ctx, base, 1, stride)};
    if (!(ctx->groups->said_channels & (1u << kind)))
        WEFT_INFO(COLL, "%s ring: 2 channels, half round the ring to rank %d and half round the "
                        "reversed ring to rank %d",
                  weft_coll_call_name(kind), ring_peer(ctx, &p[0], 1), ring_peer(ctx, &p[1], 1));
    ctx->groups->said_channels |= 1u << kind;
    const size_t t0 = ring_size(ctx, &p[0]), t1 = ring_size(ctx, &p[1]);
    const size_t ib = inter_elems ? weft_coll_align_up(inter_elems * base->es) : 0;
    char *scratch;
    WEFT_CHECK(weft_coll_scratch(ctx, t0 + t1 + ib, (void **)&scratch));
    p[0].tmp = scratch;
    p[1].tmp = scratch + t0;
    if (ib)
        p[0].inter = p[1].inter = (struct ring_buf){scratch + t0 + t1, -1};
    const struct weft_pipe pipes[2] = {ring_pipe(ctx, &p[0], kind), ring_pipe(ctx, &p[1], kind)};
    return weft_pipe_run_channels(pipes, 2);
}

weft_result_t weft_coll_allreduce_ring(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const size_t es = weft_dtype_size(op->dtype);
    const int n = ctx->nranks;
    /* The output holds every partial sum: no scratch beyond the receive slots. */
    struct ring_plan p = {
        .rank = ctx->groups->ring_pos, .n = n, .ring = ctx->groups->ring,
        .count = op->count, .es = es, .dtype = op->dtype,
        .op = op->op, .rs_steps = (size_t)n - 1, .ag_steps = (size_t)n - 1,
        .src = {(char *)op->sendbuf, -1}, .inter = {op->recvbuf, -1},
        .final = {op->recvbuf, -1}, .out = {op->recvbuf, -1},
    };
    if (two_channels(ctx, op->count / (size_t)n))
        return ring_pair(ctx, &p, WEFT_COLL_ALLREDUCE, 0, 0);
    WEFT_CHECK(ring_run(ctx, &p, WEFT_COLL_ALLREDUCE, false));
    return WEFT_OK;
}

weft_result_t weft_coll_reduce_scatter_ring(struct weft_coll_ctx *ctx,
                                            const struct weft_coll_op *op)
{
    const size_t es = weft_dtype_size(op->dtype);
    const int n = ctx->nranks;
    /* recvbuf holds only this rank's block, so partial sums of the others go to scratch. */
    struct ring_plan p = {
        .rank = ctx->groups->ring_pos, .n = n, .ring = ctx->groups->ring,
        .block_of = ctx->groups->ring, .count = op->count * (size_t)n, .es = es,
        .dtype = op->dtype, .op = op->op, .rs_steps = (size_t)n - 1, .ag_steps = 0,
        .src = {(char *)op->sendbuf, -1}, .final = {op->recvbuf, ctx->rank},
    };
    if (two_channels(ctx, op->count))
        return ring_pair(ctx, &p, WEFT_COLL_REDUCE_SCATTER, op->count, p.count);
    WEFT_CHECK(ring_run(ctx, &p, WEFT_COLL_REDUCE_SCATTER, n > 2));
    return WEFT_OK;
}

weft_result_t weft_coll_allgather_ring(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const size_t es = weft_dtype_size(op->dtype);
    const int n = ctx->nranks;
    char *mine = (char *)op->recvbuf + (size_t)ctx->rank * op->count * es;
    /* Copy the own block while the first chunks are in flight would save little: it is a
     * local memcpy of 1/n of the output. */
    weft_coll_copy(mine, op->sendbuf, op->count * es);
    struct ring_plan p = {
        .rank = ctx->groups->ring_pos, .n = n, .ring = ctx->groups->ring,
        .block_of = ctx->groups->ring, .count = op->count * (size_t)n, .es = es,
        .dtype = op->dtype, .op = op->op, .rs_steps = 0, .ag_steps = (size_t)n - 1,
        .src = {op->recvbuf, -1}, .out = {op->recvbuf, -1},
    };
    if (two_channels(ctx, op->count))
        return ring_pair(ctx, &p, WEFT_COLL_ALLGATHER, op->count, 0);
    WEFT_CHECK(ring_run(ctx, &p, WEFT_COLL_ALLGATHER, false));
    return WEFT_OK;
}

weft_result_t weft_coll_ring_allgather_blocks(struct weft_coll_ctx *ctx, enum weft_coll_kind kind,
                                              void *buf, size_t count, size_t es, int root)
{
    /* Positions (and blocks) count along the host-ordered ring from the root's. */
    struct ring_plan p = {
        .rank = weft_coll_vrank(ctx, root), .n = ctx->nranks, .ring = ctx->groups->ring,
        .ring_base = ctx->groups->pos_of[root], .count = count, .es = es, .rs_steps = 0,
        .ag_steps = (size_t)ctx->nranks - 1, .src = {buf, -1}, .out = {buf, -1},
    };
    WEFT_CHECK(ring_run(ctx, &p, kind, false));
    return WEFT_OK;
}

weft_result_t weft_coll_ring_on(struct weft_coll_ctx *ctx, const struct weft_ring_group *g,
                                const void *sendbuf, void *recvbuf, size_t count,
                                weft_dtype_t dtype, weft_op_t op, bool reduce, bool gather)
{
    /* Like the allreduce: the output holds every partial sum (blocks by ring position). */
    struct ring_plan p = {
        .rank = g->pos, .n = g->n, .ring = g->ranks, .count = count,
        .es = weft_dtype_size(dtype), .dtype = dtype, .op = op,
        .rs_steps = reduce ? (size_t)g->n - 1 : 0, .ag_steps = gather ? (size_t)g->n - 1 : 0,
        .src = {(char *)sendbuf, -1}, .inter = {recvbuf, -1}, .final = {recvbuf, -1},
        .out = {recvbuf, -1},
    };
    WEFT_CHECK(ring_run(ctx, &p, WEFT_COLL_ALLREDUCE, false));
    return WEFT_OK;
}
