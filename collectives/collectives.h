/*
 * collectives.h - the algorithms, as schedules of tagged sends, receives and reductions over
 * a weft_net. core/ validates arguments and calls weft_coll_run; select.c picks an
 * algorithm per call and logs the plan once per collective and size bucket at INFO.
 */
#ifndef WEFT_COLLECTIVES_H
#define WEFT_COLLECTIVES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/net.h"
#include "weft.h"

enum weft_coll_kind {
    WEFT_COLL_ALLREDUCE = 1,
    WEFT_COLL_BROADCAST,
    WEFT_COLL_REDUCE,
    WEFT_COLL_ALLGATHER,
    WEFT_COLL_REDUCE_SCATTER,
    WEFT_COLL_ALLTOALL,
    WEFT_COLL_BARRIER,
    WEFT_COLL_SEND,
    WEFT_COLL_RECV,
    WEFT_COLL_CHECK, /* the WEFT_CHECK fingerprint exchange (check.c) */
};

/* One operation as the user called it (already validated by core/). `count` is the
 * per-call count of the public API: per rank for allgather/reduce_scatter/alltoall. */
struct weft_coll_op {
    enum weft_coll_kind kind;
    const void *sendbuf;
    void *recvbuf;
    size_t count;
    weft_dtype_t dtype;
    weft_op_t op;
    int root; /* broadcast/reduce root, or the peer of send/recv */
};

/* The buffers of an operation as `rank` of `nranks` sees them (collectives/layout.c): whether
 * it reads sendbuf / writes recvbuf, in how many blocks of `count` elements (nranks for the
 * per-peer layouts: allgather's recvbuf, reduce_scatter's sendbuf, both of alltoall), and
 * their sizes in bytes. */
bool weft_coll_uses_send(const struct weft_coll_op *op, int rank);
bool weft_coll_uses_recv(const struct weft_coll_op *op, int rank);
size_t weft_coll_send_blocks(enum weft_coll_kind kind, int nranks);
size_t weft_coll_recv_blocks(enum weft_coll_kind kind, int nranks);
size_t weft_coll_send_bytes(const struct weft_coll_op *op, int nranks);
size_t weft_coll_recv_bytes(const struct weft_coll_op *op, int nranks);
bool weft_coll_reduces(enum weft_coll_kind kind);
/* Whether sendbuf and recvbuf, as `rank` uses them, are disjoint or overlap in the one in-place
 * layout the kind supports (README: "In-place works for"); every algorithm, host and device,
 * is safe with those and only those. When not, `why` says which bytes overlap and what is
 * supported. */
bool weft_coll_layout_ok(const struct weft_coll_op *op, int rank, int nranks, char *why,
                         size_t why_len);
/* Whether the buffers of a group's operations ops[0..n) on `rank` can be in use together:
 * point-to-point ones are all in flight while the collectives run; see layout.c. When not,
 * `why` names the two buffers. */
bool weft_coll_group_layout_ok(const struct weft_coll_op *ops, size_t n, int rank, int nranks,
                               char *why, size_t why_len);
/* Whether op is an 8-bit integer AVG, which the collectives compute in a wider type so that
 * the sum does not wrap before the division (collectives/avg_wide.c). */
bool weft_coll_avg_widens(const struct weft_coll_op *op);
/* The public call behind a kind, for messages: "weft_allreduce". */
const char *weft_coll_call_name(enum weft_coll_kind kind);

/* Kinds index per-kind arrays: they stay below this. */
#define WEFT_COLL_KINDS 16

/* The cost model's link (collectives/model.c): seconds per message, per byte sent, per byte
 * reduced; `link` names the transport it was taken from. */
struct weft_coll_model {
    double alpha, beta, gamma;
    const char *link;
};

struct weft_coll_groups; /* collectives/host_order.h */

/* Per-communicator state of the collective layer. */
struct weft_coll_ctx {
    struct weft_net *net;
    int rank;
    int nranks;
    struct weft_coll_groups *groups; /* ranks by host: ring order, hierarchy */
    uint32_t seq;         /* bumped once per collective; equal on every rank */
    void *scratch;        /* grown on demand by weft_coll_scratch */
    size_t scratch_size;
    void *wide;           /* int8/uint8 AVG's int32 chunks (avg_wide.c), at most 1 MiB */
    size_t wide_size;
    void *scratch_reg, *wide_reg; /* their registrations (weft_coll_keep_registered) */
    /* tuning, read from the config once */
    uint8_t forced[WEFT_COLL_KINDS]; /* WEFT_ALGO per kind: 1 + index in select.c, 0: auto */
    size_t small_msg_size;           /* 0: the model picks; else the fixed thresholds */
    size_t chunk_size;
    bool chunk_forced;               /* WEFT_CHUNK_SIZE set: no chunk from the model */
    size_t call_chunk;               /* the running call's chunk (0: chunk_size) */
    struct weft_coll_model model;
    int pipeline_depth;
    double timeout_s; /* WEFT_TIMEOUT, for the pipeline's own waits */
    bool check;       /* WEFT_CHECK: fingerprint every call (check.c) */
    uint64_t check_seq;
    void *check_buf;  /* nranks fingerprints, allocated at the first check */
    uint32_t logged_plans[16]; /* bitsets of size buckets already logged, per kind */
    /* The last plan per kind (select.c): a call like the one before skips the model. */
    struct weft_coll_plan_memo {
        size_t count, esize; /* of the call it was made for */
        uint16_t algo;       /* 1 + index in select.c's table, 0: none yet */
        size_t chunk;
        double predicted_s;
    } plan_memo[WEFT_COLL_KINDS];
    struct weft_sharp *sharp;  /* SHARP offload (sharp.c), NULL when off */
};

weft_result_t weft_coll_ctx_init(struct weft_coll_ctx *ctx, struct weft_net *net);
void weft_coll_ctx_fini(struct weft_coll_ctx *ctx);

/* The plan weft_coll_collective would follow for `count` elements of `dtype` (the public
 * call's count): the algorithm's WEFT_ALGO name, its chunk (0 when not pipelined) and the
 * model's prediction in seconds. */
weft_result_t weft_coll_plan_query(const struct weft_coll_ctx *ctx, enum weft_coll_kind kind,
                                   size_t count, weft_dtype_t dtype, const char **algo,
                                   size_t *chunk, double *predicted_s);

/* Runs ops[0..n) as one group: point-to-point operations are posted first, all at once,
 * then collectives run in order, then everything is waited for. Blocking (host buffers). */
weft_result_t weft_coll_run(struct weft_coll_ctx *ctx, const struct weft_coll_op *ops, size_t n);

/* Tags: kind in bits 56..63, the collective's sequence number in 24..55, a step in 0..23.
 * Point-to-point operations use kind SEND with seq 0 and step 0. */
static inline uint64_t weft_coll_tag(enum weft_coll_kind kind, uint32_t seq, uint32_t step)
{
    return ((uint64_t)kind << 56) | ((uint64_t)seq << 24) | (step & 0xffffffu);
}

/* WEFT_CHECK=1: the ranks exchange fingerprints of ops[0..n) (one call, or a group's
 * collectives; point-to-point operations alone are not checked) and each returns
 * WEFT_ERR_INVALID_ARG naming both calls and both ranks when any rank's differs from rank
 * 0's. Nothing is left in flight either way. Off: returns WEFT_OK at once. */
weft_result_t weft_coll_check_calls(struct weft_coll_ctx *ctx, const struct weft_coll_op *ops,
                                    size_t n);

/* Scratch of at least `bytes`, kept across calls. */
weft_result_t weft_coll_scratch(struct weft_coll_ctx *ctx, size_t bytes, void **buf);

#endif /* WEFT_COLLECTIVES_H */
