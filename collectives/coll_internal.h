/*
 * coll_internal.h - what the algorithm files share: block and chunk arithmetic, the
 * pipelined send/receive engine, blocking steps, and one entry point per algorithm.
 */
#ifndef WEFT_COLL_INTERNAL_H
#define WEFT_COLL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/collectives.h"
#include "collectives/host_order.h"

/* Request arrays of the pipeline live on the stack; deeper settings are clamped. */
#define WEFT_COLL_MAX_DEPTH 64
/* Scratch parts are aligned so the reduction loops vectorise. */
#define WEFT_COLL_ALIGN 64

static inline size_t weft_coll_align_up(size_t bytes)
{
    return (bytes + WEFT_COLL_ALIGN - 1) & ~(size_t)(WEFT_COLL_ALIGN - 1);
}

/* `total` elements split into `parts` nearly equal parts, the remainder spread over the first
 * ones; empty parts are legal (total < parts). */
static inline size_t weft_coll_part_count(size_t total, size_t parts, size_t i)
{
    return total / parts + (i < total % parts ? 1 : 0);
}

static inline size_t weft_coll_part_offset(size_t total, size_t parts, size_t i)
{
    size_t rem = total % parts;
    return i * (total / parts) + (i < rem ? i : rem);
}

static inline int weft_coll_mod(int a, int n)
{
    return ((a % n) + n) % n;
}

/* Trees and chains number their members from `root` in host order (host_order.h), so that
 * members next to each other share a host whatever the placement: this rank's number, and
 * the rank numbered v. With ranks placed by host these are rank - root and root + v. */
static inline int weft_coll_vrank(const struct weft_coll_ctx *ctx, int root)
{
    const struct weft_coll_groups *g = ctx->groups;
    return weft_coll_mod(g->ring_pos - g->pos_of[root], ctx->nranks);
}

static inline int weft_coll_vpeer(const struct weft_coll_ctx *ctx, int root, int v)
{
    const struct weft_coll_groups *g = ctx->groups;
    return g->ring[weft_coll_mod(g->pos_of[root] + v, ctx->nranks)];
}

/* Copies `len` bytes unless the call is in place (len 0 may come with NULL buffers). */
static inline void weft_coll_copy(void *dst, const void *src, size_t len)
{
    if (len && dst != src)
        memcpy(dst, src, len);
}

/*
 * A stream of `nmsg` messages received from `recv_peer` and/or sent to `send_peer` (-1:
 * none), with at most `depth` receives and `depth` sends in flight. Receive k lands where
 * recv_buf says and is then processed; send k may start once k < dep_free, or once receive
 * k - dep_lag is processed. With slot_shared, send k reads receive k's slot, so a slot is
 * reused only after its send completed. Message k carries tag (kind, seq, k).
 */
struct weft_pipe {
    struct weft_coll_ctx *ctx;
    enum weft_coll_kind kind;
    int send_peer;
    int recv_peer;
    size_t nmsg;
    size_t dep_free;
    size_t dep_lag;
    bool slot_shared;
    int depth;
    void *arg;
    void (*send_buf)(void *arg, size_t k, const void **buf, size_t *len);
    void (*recv_buf)(void *arg, size_t k, void **buf, size_t *len);
    void (*process)(void *arg, size_t k); /* NULL: nothing to do */
};

weft_result_t weft_pipe_run(const struct weft_pipe *pipe);

/* On a failure that may leave requests in flight, aborts the net (unless a wait already
 * did) so that the transports forget them before the caller frees them. */
void weft_coll_fail(struct weft_coll_ctx *ctx);

/* One blocking step of an unpipelined algorithm: receives `len` bytes from recv_peer into
 * recvbuf and sends `len` bytes of sendbuf to send_peer (-1: none), both with tag (kind,
 * ctx->seq, step), and waits for both; on failure calls weft_coll_fail. */
weft_result_t weft_coll_sendrecv(struct weft_coll_ctx *ctx, enum weft_coll_kind kind,
                                 int send_peer, const void *sendbuf, int recv_peer,
                                 void *recvbuf, size_t len, uint32_t step);

static inline weft_result_t weft_coll_send(struct weft_coll_ctx *ctx, enum weft_coll_kind kind,
                                           int peer, const void *buf, size_t len, uint32_t step)
{
    return weft_coll_sendrecv(ctx, kind, peer, buf, -1, NULL, len, step);
}

static inline weft_result_t weft_coll_recv(struct weft_coll_ctx *ctx, enum weft_coll_kind kind,
                                           int peer, void *buf, size_t len, uint32_t step)
{
    return weft_coll_sendrecv(ctx, kind, -1, NULL, peer, buf, len, step);
}

/* Weft's own buffers stay registered with the transports that register memory (verbs) for
 * as long as they live, so that no transfer from or to them pays a registration: releases
 * *reg and, when buf is not NULL, registers [buf, buf+len) into it. Best effort: a buffer
 * that cannot be registered is registered per transfer instead, as user buffers are. */
void weft_coll_keep_registered(struct weft_coll_ctx *ctx, void **reg, void *buf, size_t len);

/* Chunks of `count` elements of `elsize` bytes in a pipeline: at least one, so that an empty
 * block still travels (as one empty message) and the peers' message counts agree. */
size_t weft_coll_nchunks(const struct weft_coll_ctx *ctx, size_t count, size_t elsize);

/* The algorithms. `op` is validated and non-empty (barriers aside), there are at least two
 * ranks, and ctx->seq is already bumped for this call. */
weft_result_t weft_coll_allreduce_ring(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);
weft_result_t weft_coll_allreduce_rd(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);
weft_result_t weft_coll_reduce_scatter_ring(struct weft_coll_ctx *ctx,
                                            const struct weft_coll_op *op);
weft_result_t weft_coll_allgather_ring(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);
weft_result_t weft_coll_broadcast_tree(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);
weft_result_t weft_coll_broadcast_chain(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);
weft_result_t weft_coll_reduce_tree(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);
weft_result_t weft_coll_reduce_chain(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);
weft_result_t weft_coll_alltoall_pairwise(struct weft_coll_ctx *ctx,
                                          const struct weft_coll_op *op);
weft_result_t weft_coll_barrier_dissemination(struct weft_coll_ctx *ctx,
                                              const struct weft_coll_op *op);

/* The broadcast's allgather phase (bcast_sag.c): `count` elements of `es` bytes in buf, cut
 * in n nearly equal blocks of which this rank holds block weft_coll_vrank(ctx, root) (its
 * place along the host-ordered ring from the root), gathered by the pipelined ring. */
weft_result_t weft_coll_ring_allgather_blocks(struct weft_coll_ctx *ctx, enum weft_coll_kind kind,
                                              void *buf, size_t count, size_t es, int root);
weft_result_t weft_coll_allreduce_tree(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);
weft_result_t weft_coll_allreduce_rabenseifner(struct weft_coll_ctx *ctx,
                                               const struct weft_coll_op *op);
weft_result_t weft_coll_reduce_scatter_halving(struct weft_coll_ctx *ctx,
                                               const struct weft_coll_op *op);
weft_result_t weft_coll_allgather_bruck(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);
weft_result_t weft_coll_broadcast_sag(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);

/* Non-power-of-two rank counts (halving.c): the largest power of two <= n; the first 2*extra
 * ranks pair up and the odd one of each pair stands for both (fold_vrank: -1 for the even
 * one), the others are renumbered down by extra. */
int weft_coll_pof2_below(int n);
int weft_coll_fold_vrank(int rank, int extra);
int weft_coll_fold_rank(int vrank, int extra);

/* Recursive halving over the pof2 group: vrank v ends up owning elements [first(v),
 * first(v + 1)); `cur` holds this rank's whole input, `acc` (indexed like it, may be cur)
 * receives the partial sums, `tmp` holds the largest range kept by the first step. Steps are
 * tagged step0, step0 + 1, ... */
struct weft_halving {
    int pof2, extra, vrank;
    size_t block;
    size_t (*first)(const struct weft_halving *h, int vrank);
    uint32_t step0;
};
weft_result_t weft_coll_halving(struct weft_coll_ctx *ctx, const struct weft_coll_op *op,
                                const struct weft_halving *h, const char *cur, char *acc,
                                char *tmp);

/* Algorithms that drive several peers at once poll (poll.c): weft_coll_poll makes one pass
 * of progress and, when nothing moved (busy false), spins then yields, and fails after
 * WEFT_TIMEOUT without progress; on a broken net it reports the wait of `pending` (may be
 * NULL). */
struct weft_coll_poller {
    unsigned long idle;
    double deadline;
};
bool weft_coll_req_done(const struct weft_request *req);
weft_result_t weft_coll_poll(struct weft_coll_ctx *ctx, struct weft_coll_poller *poller,
                             bool busy, const char *what, struct weft_request *pending);
/* weft_coll_sendrecv with lengths of its own per direction. */
weft_result_t weft_coll_exchange(struct weft_coll_ctx *ctx, enum weft_coll_kind kind,
                                 int send_peer, const void *sendbuf, size_t send_len,
                                 int recv_peer, void *recvbuf, size_t recv_len, uint32_t step);

/* int8/uint8 AVG (weft_coll_avg_widens): in chunks widened to int32, each summed by
 * weft_coll_collective, then divided and narrowed; ctx->seq is bumped per chunk. */
weft_result_t weft_coll_avg_wide(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);

/* WEFT_ALGO parsed into ctx->forced (select.c). */
weft_result_t weft_coll_parse_algo(const char *text, uint8_t forced[WEFT_COLL_KINDS]);

/* The cost model (model.c): the link from the peers' transports and the WEFT_MODEL_* knobs,
 * and an algorithm's predicted seconds for `bytes` (the public call's count in bytes) on p
 * ranks; for chains and the tree *chunk gets the chunk that prediction assumes: forced_chunk
 * when not 0, else the model's best between these bounds; rings leave it 0 (WEFT_CHUNK_SIZE).
 * INFINITY for an unknown algorithm. */
#define WEFT_MODEL_MIN_CHUNK ((size_t)64 << 10)
#define WEFT_MODEL_MIN_TREE_CHUNK ((size_t)16 << 10)
#define WEFT_MODEL_MAX_CHUNK ((size_t)1 << 20)
void weft_coll_model_init(struct weft_coll_ctx *ctx);
double weft_coll_model_time(const struct weft_coll_model *m, enum weft_coll_kind kind,
                            const char *algo, int p, size_t bytes, size_t forced_chunk,
                            size_t *chunk);

/* Picks the algorithm for one collective (bumping ctx->seq) and runs it. */
weft_result_t weft_coll_collective(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);

#endif /* WEFT_COLL_INTERNAL_H */
