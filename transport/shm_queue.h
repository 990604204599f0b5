/*
 * shm_queue.h - the single-producer single-consumer ring that carries one direction of one
 * pair of local ranks, laid out in the receiver's shared segment, and each side's private view.
 */
#ifndef WEFT_TRANSPORT_SHM_QUEUE_H
#define WEFT_TRANSPORT_SHM_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEFT_SHM_CACHELINE 64
/* A message's header occupies the start of its first slot; eager payload follows it at once,
 * so that a message of up to 24 bytes is one cache line for the receiver to fetch. */
#define WEFT_SHM_MSG_HDR_BYTES 40

enum weft_shm_msg_kind {
    WEFT_SHM_MSG_EAGER = 1, /* payload streams through the slots */
    WEFT_SHM_MSG_RNDV = 2   /* the receiver pulls the payload with process_vm_readv */
};

/* What the receiver learned about cross-memory attach from this sender (queue.cma). */
enum weft_shm_cma_state {
    WEFT_SHM_CMA_UNKNOWN = 0, /* no rendezvous read yet: the sender waits after one */
    WEFT_SHM_CMA_OK = 1,
    WEFT_SHM_CMA_REFUSED = 2 /* the kernel refused: stream the pending rendezvous instead */
};

struct weft_shm_msg_hdr {
    uint64_t tag;
    uint64_t len;
    uint32_t kind;
    uint32_t reserved;
    uint64_t addr; /* RNDV: the payload's address in the sender */
    uint64_t seq;  /* RNDV: 1-based count of rendezvous on this queue */
};

/* A side's abort flag: nonzero, and it carries the culprit (WEFT_CULPRIT_NONE included). */
#define WEFT_SHM_ABORT_NOTICE(culprit) ((uint32_t)((culprit) + 2))
#define WEFT_SHM_ABORT_CULPRIT(notice) ((int)(notice) - 2)

/* Shared state; the slots follow it. Each line has one writer so the sides do not share. */
struct weft_shm_queue {
    _Alignas(WEFT_SHM_CACHELINE) _Atomic uint64_t head; /* slots published (sender) */
    _Alignas(WEFT_SHM_CACHELINE) _Atomic uint64_t tail; /* slots released (receiver) */
    /* receiver, rarely written */
    _Alignas(WEFT_SHM_CACHELINE) _Atomic uint64_t rndv_done; /* rendezvous completed */
    _Atomic uint32_t cma;                                    /* enum weft_shm_cma_state */
    _Atomic uint32_t rx_aborted; /* 0, or WEFT_SHM_ABORT_NOTICE(the culprit) */
    /* sender, rarely written */
    _Alignas(WEFT_SHM_CACHELINE) _Atomic uint32_t tx_aborted; /* as rx_aborted */
};

_Static_assert(sizeof(struct weft_shm_msg_hdr) <= WEFT_SHM_MSG_HDR_BYTES,
               "a message header must fit its room in the slot");

#define WEFT_SHM_QUEUE_HDR_BYTES \
    ((sizeof(struct weft_shm_queue) + WEFT_SHM_CACHELINE - 1) / WEFT_SHM_CACHELINE * \
     WEFT_SHM_CACHELINE)

/* One side's private view: its own index and a cached copy of the other side's. */
struct weft_shm_ring {
    struct weft_shm_queue *q;
    uint8_t *slots;
    uint64_t nslots;
    size_t slot_size;
    uint64_t pos;   /* head for the producer, tail for the consumer */
    uint64_t limit; /* last seen tail (producer) or head (consumer) */
};

/* Bytes one queue takes in a segment (page aligned). */
size_t weft_shm_queue_bytes(uint64_t nslots, size_t slot_size);
void weft_shm_ring_attach(struct weft_shm_ring *ring, void *queue, uint64_t nslots,
                          size_t slot_size, bool producer);

/* Up to `want` of the `avail` slots from the side's position, no further than the ring's end
 * so that they follow each other in memory: their count in *got, or NULL when avail is 0. */
static inline uint8_t *weft_shm_ring_span(const struct weft_shm_ring *r, uint64_t avail,
                                          uint64_t want, uint64_t *got)
{
    if (!avail)
        return NULL;
    const uint64_t at = r->pos % r->nslots;
    const uint64_t n = want < avail ? want : avail;
    *got = n < r->nslots - at ? n : r->nslots - at;
    return r->slots + at * r->slot_size;
}

/* Producer: up to `want` free slots in a row from the next one, their count in *got, or NULL
 * when the ring is full; publish them once written. */
static inline uint8_t *weft_shm_ring_acquire(struct weft_shm_ring *r, uint64_t want,
                                             uint64_t *got)
{
    if (r->nslots - (r->pos - r->limit) < want)
        r->limit = atomic_load_explicit(&r->q->tail, memory_order_acquire);
    return weft_shm_ring_span(r, r->nslots - (r->pos - r->limit), want, got);
}

static inline void weft_shm_ring_publish(struct weft_shm_ring *r, uint64_t n)
{
    r->pos += n;
    atomic_store_explicit(&r->q->head, r->pos, memory_order_release);
}

/* Consumer: up to `want` unread slots in a row from the oldest, their count in *got, or NULL
 * when the ring is empty; release them once read. */
static inline const uint8_t *weft_shm_ring_peek(struct weft_shm_ring *r, uint64_t want,
                                                uint64_t *got)
{
    if (r->limit - r->pos < want)
        r->limit = atomic_load_explicit(&r->q->head, memory_order_acquire);
    return weft_shm_ring_span(r, r->limit - r->pos, want, got);
}

static inline void weft_shm_ring_release(struct weft_shm_ring *r, uint64_t n)
{
    r->pos += n;
    atomic_store_explicit(&r->q->tail, r->pos, memory_order_release);
}

#endif /* WEFT_TRANSPORT_SHM_QUEUE_H */
