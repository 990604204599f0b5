/*
 * double binary tree allreduce: 2 * depth + C - 1 chunk steps (depth ~ log2 n, C chunks per
 * half); each rank sends about S bytes up and, as an inner node, S bytes down. Two in-order
 * binary trees, the second shifted by one rank, so that every rank is inner in at most one;
 * each reduces half of the vector to its root and broadcasts it back, chunk by chunk.
 */
#include "collectives/coll_internal.h"
#include "core/error.h"
#include "core/reduce.h"

/* Requests in flight per peer and direction; deeper settings are clamped. */
#define TREE_MAX_DEPTH 16

/* In-order binary tree over positions 1..n: the root of [lo, hi] is the position with the
 * most trailing zero bits, so odd positions are always leaves. */
static int top_of(int lo, int hi)
{
    int h = 1;
    while (h <= hi / 2)
        h *= 2;
    for (; h > 1; h /= 2) {
        if (hi / h * h >= lo)
            return hi / h * h;
    }
    return lo;
}

struct tree_links {
    int parent; /* rank (tree_links: position), or -1 at the root */
    int child[2];
    int nchild;
};

/* Tree 0 puts rank r at position r + 1; tree 1 at position (r + 1) % n + 1, so that the inner
 * (even) positions of one are leaves (odd positions, or position 1) of the other. */
static int tree_pos(int t, int n, int rank)
{
    return t == 0 ? rank + 1 : (rank + 1) % n + 1;
}

static int tree_rank(int t, int n, int pos)
{
    return t == 0 ? pos - 1 : (pos + n - 2) % n;
}

static void tree_links(int t, int n, int rank, struct tree_links *out)
{
    const int v = tree_pos(t, n, rank);
    int lo = 1, hi = n, parent = 0;
    for (int top = top_of(lo, hi); top != v; top = top_of(lo, hi)) {
        parent = top;
        if (v < top)
            hi = top - 1;
        else
            lo = top + 1;
    }
    out->parent = parent ? tree_rank(t, n, parent) : -1;
    out->nchild = 0;
    if (lo < v)
        out->child[out->nchild++] = tree_rank(t, n, top_of(lo, v - 1));
    if (v < hi)
        out->child[out->nchild++] = tree_rank(t, n, top_of(v + 1, hi));
}

/* One tree's half of the vector and how far its chunks got on this rank. */
struct tree_stream {
    struct tree_links l;
    char *out;      /* recvbuf of the half */
    const char *in; /* sendbuf of the half */
    size_t count, nchunks;
    char *slots[2]; /* depth receive slots per child */
    size_t slot_bytes;
    size_t up_rdone[2], reduced, up_sdone, dn_rdone, dn_sdone[2];
};

/* The messages between this rank and one peer in one direction. Transports match messages
 * between two ranks in order, so both ends must post them in the same order: chunk k of an
 * up stream at virtual time k, of a down stream at k + lag (the chunk's round trip, so that
 * up chunks run ahead), up first on ties. Up chunks never wait for down ones, so this order
 * cannot close a cycle of waits. */
enum { UP = 0, DOWN = 1 };
struct tree_queue {
    int peer;
    bool send;
    int nsub;
    struct {
        int t, dir, child; /* child: index in the tree's links (up receives, down sends) */
        size_t next;       /* next chunk to post */
    } sub[2];
    struct weft_request req[TREE_MAX_DEPTH];
    uint8_t req_sub[TREE_MAX_DEPTH];
    size_t posted, done;
};

struct tree_call {
    struct weft_coll_ctx *ctx;
    const struct weft_coll_op *op;
    size_t es, depth, lag;
    struct tree_stream st[2];
    struct tree_queue q[12];
    int nq;
};

static size_t chunk_elems(const struct tree_stream *s, size_t k, size_t *off)
{
    *off = weft_coll_part_offset(s->count, s->nchunks, k);
    return weft_coll_part_count(s->count, s->nchunks, k);
}

static uint64_t tree_tag(const struct tree_call *c, int t, size_t k, int dir)
{
    return weft_coll_tag(WEFT_COLL_ALLREDUCE, c->ctx->seq,
                         (uint32_t)((k << 2) | ((size_t)t << 1) | (size_t)dir));
}

static void add_link(struct tree_call *c, int peer, bool send, int t, int dir, int child)
{
    struct tree_queue *q = NULL;
    for (int i = 0; i < c->nq && !q; i++) {
        if (c->q[i].peer == peer && c->q[i].send == send)
            q = &c->q[i];
    }
    if (!q) {
        q = &c->q[c->nq++];
        q->peer = peer;
        q->send = send;
    }
    q->sub[q->nsub].t = t;
    q->sub[q->nsub].dir = dir;
    q->sub[q->nsub].child = child;
    q->nsub++;
}

/* The sub-stream whose next message comes first in the queue's order, or -1 when done. */
static int next_sub(const struct tree_call *c, const struct tree_queue *q)
{
    int best = -1;
    size_t best_vt = 0;
    for (int i = 0; i < q->nsub; i++) {
        if (q->sub[i].next >= c->st[q->sub[i].t].nchunks)
            continue;
        const size_t vt = 2 * (q->sub[i].next + (q->sub[i].dir == DOWN ? c->lag : 0)) +
                          (size_t)q->sub[i].dir;
        if (best < 0 || vt < best_vt) {
            best = i;
            best_vt = vt;
        }
    }
    return best;
}

/* Whether chunk k of a sub-stream may be posted now, and its buffer. */
static bool ready(struct tree_call *c, const struct tree_queue *q, int i, size_t k, char **buf,
                  size_t *len)
{
    struct tree_stream *s = &c->st[q->sub[i].t];
    size_t off;
    const size_t bytes = chunk_elems(s, k, &off) * c->es;
    *len = bytes;
    if (q->send && q->sub[i].dir == UP) {
        /* a leaf sends its input as is; an inner node its partial in recvbuf */
        *buf = (s->l.nchild ? s->out : (char *)s->in) + off * c->es;
        return k < s->reduced;
    }
    if (q->send) {
        *buf = s->out + off * c->es;
        return k < (s->l.parent < 0 ? s->reduced : s->dn_rdone);
    }
    if (q->sub[i].dir == UP) {
        *buf = s->slots[q->sub[i].child] + (k % c->depth) * s->slot_bytes;
        return k < s->reduced + c->depth;
    }
    /* the result lands where the partial was, once the partial has left */
    *buf = s->out + off * c->es;
    return k < s->up_sdone;
}

static void count_done(struct tree_call *c, const struct tree_queue *q, int i)
{
    struct tree_stream *s = &c->st[q->sub[i].t];
    size_t *done;
    if (q->send)
        done = q->sub[i].dir == UP ? &s->up_sdone : &s->dn_sdone[q->sub[i].child];
    else
        done = q->sub[i].dir == UP ? &s->up_rdone[q->sub[i].child] : &s->dn_rdone;
    (*done)++;
}

static weft_result_t queue_advance(struct tree_call *c, struct tree_queue *q, bool *busy)
{
    while (q->done < q->posted && weft_coll_req_done(&q->req[q->done % c->depth])) {
        WEFT_CHECK(weft_net_wait_one(c->ctx->net, &q->req[q->done % c->depth]));
        count_done(c, q, q->req_sub[q->done % c->depth]);
        q->done++;
        *busy = true;
    }
    while (q->posted - q->done < c->depth) {
        const int i = next_sub(c, q);
        char *buf;
        size_t len;
        if (i < 0 || !ready(c, q, i, q->sub[i].next, &buf, &len))
            break;
        const size_t k = q->sub[i].next, slot = q->posted % c->depth;
        const uint64_t tag = tree_tag(c, q->sub[i].t, k, q->sub[i].dir);
        if (q->send)
            WEFT_CHECK(weft_net_isend(c->ctx->net, q->peer, buf, len, tag, &q->req[slot]));
        else
            WEFT_CHECK(weft_net_irecv(c->ctx->net, q->peer, buf, len, tag, &q->req[slot]));
        q->req_sub[slot] = (uint8_t)i;
        q->sub[i].next++;
        q->posted++;
        *busy = true;
    }
    return WEFT_OK;
}

/* Reduces every chunk whose children's partials have all arrived. */
static void reduce_ready(struct tree_call *c, struct tree_stream *s, bool *busy)
{
    const weft_op_t op = c->op->op;
    const weft_dtype_t dt = c->op->dtype;
    while (s->reduced < s->nchunks) {
        const size_t k = s->reduced;
        for (int i = 0; i < s->l.nchild; i++) {
            if (s->up_rdone[i] <= k)
                return;
        }
        size_t off;
        const size_t elems = chunk_elems(s, k, &off);
        const char *acc = s->in + off * c->es;
        for (int i = 0; i < s->l.nchild; i++) {
            weft_reduce_local(s->out + off * c->es, acc, s->slots[i] + (k % c->depth) * s->slot_bytes,
                              elems, dt, op);
            acc = s->out + off * c->es;
        }
        if (s->l.parent < 0 && op == WEFT_AVG)
            weft_reduce_avg_finish(s->out + off * c->es, elems, dt, c->ctx->nranks);
        s->reduced++;
        *busy = true;
    }
}

static bool all_done(const struct tree_call *c)
{
    for (int i = 0; i < c->nq; i++) {
        if (c->q[i].done < c->q[i].posted || next_sub(c, &c->q[i]) >= 0)
            return false;
    }
    return c->st[0].reduced == c->st[0].nchunks && c->st[1].reduced == c->st[1].nchunks;
}

weft_result_t weft_coll_allreduce_tree(struct weft_coll_ctx *ctx, const struct weft_coll_op *op)
{
    const int n = ctx->nranks;
    const size_t es = weft_dtype_size(op->dtype);
    struct tree_call *c = calloc(1, sizeof(*c));
    weft_result_t r = WEFT_OK;
    char *scratch = NULL;

    if (!c)
        return WEFT_ERROR(WEFT_ERR_NO_MEMORY, "rank %d: cannot allocate the tree state",
                          ctx->rank);
    c->ctx = ctx;
    c->op = op;
    c->es = es;
    c->depth = (size_t)ctx->pipeline_depth;
    if (c->depth > TREE_MAX_DEPTH)
        c->depth = TREE_MAX_DEPTH;
    int height = 1;
    while ((1 << height) <= n)
        height++;
    c->lag = 2 * (size_t)height;
    size_t slot_total = 0;
    for (int t = 0; t < 2; t++) {
        struct tree_stream *s = &c->st[t];
        /* The trees are built over ring positions (host order), then named by rank. */
        const int *ring = ctx->groups->ring;
        tree_links(t, n, ctx->groups->ring_pos, &s->l);
        if (s->l.parent >= 0)
            s->l.parent = ring[s->l.parent];
        for (int i = 0; i < s->l.nchild; i++)
            s->l.child[i] = ring[s->l.child[i]];
        const size_t off = weft_coll_part_offset(op->count, 2, (size_t)t);
        s->count = weft_coll_part_count(op->count, 2, (size_t)t);
        s->in = (const char *)op->sendbuf + off * es;
        s->out = (char *)op->recvbuf + off * es;
        /* The tag keeps 21 bits for the chunk index. */
        s->nchunks = s->count ? weft_coll_nchunks(ctx, s->count, es) : 0;
        while (s->nchunks > ((size_t)1 << 21))
            s->nchunks = (s->nchunks + 1) / 2;
        s->slot_bytes =
            s->nchunks ? weft_coll_align_up((s->count + s->nchunks - 1) / s->nchunks * es) : 0;
        slot_total += (size_t)s->l.nchild * c->depth * s->slot_bytes;
        if (!s->nchunks)
            continue;
        if (s->l.parent >= 0) {
            add_link(c, s->l.parent, true, t, UP, 0);
            add_link(c, s->l.parent, false, t, DOWN, 0);
        }
        for (int i = 0; i < s->l.nchild; i++) {
            add_link(c, s->l.child[i], false, t, UP, i);
            add_link(c, s->l.child[i], true, t, DOWN, i);
        }
    }
    if (slot_total)
        WEFT_CHECK_GOTO(weft_coll_scratch(ctx, slot_total, (void **)&scratch), r, out);
    for (int t = 0; t < 2; t++) {
        for (int i = 0; i < c->st[t].l.nchild; i++) {
            c->st[t].slots[i] = scratch;
            scratch += c->depth * c->st[t].slot_bytes;
        }
    }
    /* Both trees in one loop, so that neither waits for the other. */
    struct weft_coll_poller poller = {0, 0};
    for (;;) {
        bool busy = false;
        for (int i = 0; i < c->nq; i++)
            WEFT_CHECK_GOTO(queue_advance(c, &c->q[i], &busy), r, fail);
        reduce_ready(c, &c->st[0], &busy);
        reduce_ready(c, &c->st[1], &busy);
        if (all_done(c))
            break;
        struct weft_request *pending = NULL;
        for (int i = 0; i < c->nq && !pending; i++) {
            if (c->q[i].done < c->q[i].posted)
                pending = &c->q[i].req[c->q[i].done % c->depth];
        }
        WEFT_CHECK_GOTO(weft_coll_poll(ctx, &poller, busy, "weft_allreduce (tree)", pending), r,
                        fail);
    }
    goto out;
fail:
    weft_coll_fail(ctx);
out:
    free(c);
    return r;
}
