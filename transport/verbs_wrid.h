/*
 * verbs_wrid.h - the verbs transport's work request ids: which peer a completion belongs to,
 * whether it is a receive, and for a send which of the peer's queue pairs posted it and the
 * low bits of that queue pair's send counter.
 */
#ifndef WEFT_TRANSPORT_VERBS_WRID_H
#define WEFT_TRANSPORT_VERBS_WRID_H

#include <stdbool.h>
#include <stdint.h>

/* bit 63: a receive; send: rank in bits 40-62, the queue pair (0: the peer's first, which
 * carries everything; 1-3: its data queue pairs) in bits 38-39, the counter's low 38 bits
 * below; receive: the rank in the low bits. The counter wraps within its field, never into
 * the queue pair or the rank: a job that posts 2^38 work requests to one peer still finds
 * the right peer. */
#define WEFT_VERBS_WR_RECV_BIT (1ull << 63)
#define WEFT_VERBS_WR_RANK_SHIFT 40
#define WEFT_VERBS_WR_QP_SHIFT 38
#define WEFT_VERBS_WR_MAX_QPS 4
#define WEFT_VERBS_WR_COUNT_MASK ((1ull << WEFT_VERBS_WR_QP_SHIFT) - 1)
#define WEFT_VERBS_WR_MAX_RANK ((1 << (63 - WEFT_VERBS_WR_RANK_SHIFT)) - 1)

static inline uint64_t weft_verbs_wrid_send(int rank, int qp, uint64_t count)
{
    return ((uint64_t)rank << WEFT_VERBS_WR_RANK_SHIFT) |
           ((uint64_t)qp << WEFT_VERBS_WR_QP_SHIFT) | (count & WEFT_VERBS_WR_COUNT_MASK);
}

static inline uint64_t weft_verbs_wrid_recv(int rank)
{
    return WEFT_VERBS_WR_RECV_BIT | (uint64_t)rank;
}

static inline bool weft_verbs_wrid_is_recv(uint64_t id)
{
    return (id & WEFT_VERBS_WR_RECV_BIT) != 0;
}

static inline int weft_verbs_wrid_rank(uint64_t id)
{
    return weft_verbs_wrid_is_recv(id)
               ? (int)(id & WEFT_VERBS_WR_COUNT_MASK)
               : (int)((id & ~WEFT_VERBS_WR_RECV_BIT) >> WEFT_VERBS_WR_RANK_SHIFT);
}

/* Which of the peer's queue pairs posted the send `id`. */
static inline int weft_verbs_wrid_qp(uint64_t id)
{
    return (int)((id >> WEFT_VERBS_WR_QP_SHIFT) & (WEFT_VERBS_WR_MAX_QPS - 1));
}

/* The full send counter a send's id carries: the nearest at or above `done`, the last one
 * known complete (completions arrive in order, and far fewer than 2^40 are outstanding). */
static inline uint64_t weft_verbs_wrid_count(uint64_t id, uint64_t done)
{
    return done + (((id & WEFT_VERBS_WR_COUNT_MASK) - done) & WEFT_VERBS_WR_COUNT_MASK);
}

#endif /* WEFT_TRANSPORT_VERBS_WRID_H */
