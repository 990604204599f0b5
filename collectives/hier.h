/*
 * hier.h - the two-level allreduce (hier.c) and the ring over a group of ranks it is built
 * from (ring.c).
 */
#ifndef WEFT_COLL_HIER_H
#define WEFT_COLL_HIER_H

#include <stdbool.h>

#include "collectives/collectives.h"

/* A ring over some of the net's ranks: ranks[0..n), this rank at ranks[pos]. */
struct weft_ring_group {
    int n;
    int pos;
    const int *ranks;
};

/* Pipelined ring over `g` on a vector of `count` elements cut into g->n blocks (by ring
 * position): `reduce` runs the reduce-scatter steps (this rank then holds the reduced block of
 * its position in recvbuf), `gather` the allgather steps (every block to every member), both
 * an allreduce. recvbuf holds the whole vector; sendbuf may equal it. Tags use ctx->seq: the
 * caller bumps it between two calls on overlapping groups. */
weft_result_t weft_coll_ring_on(struct weft_coll_ctx *ctx, const struct weft_ring_group *g,
                                const void *sendbuf, void *recvbuf, size_t count,
                                weft_dtype_t dtype, weft_op_t op, bool reduce, bool gather);

/* WEFT_NCHANNELS: at most this many pipelines at once (channels.c). */
#define WEFT_COLL_MAX_CHANNELS 2

/* Runs pipes[0..n) at once, none waiting on another (n == 1: weft_pipe_run). Their send and
 * receive peers must differ pairwise: the transports match a peer's messages in order, so
 * two pipelines to one peer would have to interleave the same way on both ends. */
struct weft_pipe;
weft_result_t weft_pipe_run_channels(const struct weft_pipe *pipes, int n);

/* Whether the two-level allreduce can run on this communicator (the same number of ranks on
 * every host), and whether the model should pick it for `bytes` (select.c asks only when
 * WEFT_ALGO does not force an allreduce algorithm): more than one host,
 * more than one rank per host, at least WEFT_HIER_THRESHOLD bytes and one element per rank. */
bool weft_coll_hier_possible(const struct weft_coll_ctx *ctx);
bool weft_coll_hier_wanted(const struct weft_coll_ctx *ctx, const struct weft_coll_op *op,
                           size_t bytes);

/* Reduce-scatter inside each host (shm), allreduce of each part across hosts among the ranks
 * of the same local index, allgather inside each host. Falls back to the host-ordered ring
 * when hosts have different numbers of ranks. */
weft_result_t weft_coll_allreduce_hier(struct weft_coll_ctx *ctx, const struct weft_coll_op *op);

#endif /* WEFT_COLL_HIER_H */
