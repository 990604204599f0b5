/*
 * shm_queue.c - geometry of the shared-memory rings and attaching a side's view to one.
 * The hot producer/consumer operations are inline in shm_queue.h.
 */
#include "transport/shm_queue.h"

#include <string.h>

#define SHM_QUEUE_ALIGN 4096

size_t weft_shm_queue_bytes(uint64_t nslots, size_t slot_size)
{
    size_t bytes = WEFT_SHM_QUEUE_HDR_BYTES + (size_t)nslots * slot_size;
    return (bytes + SHM_QUEUE_ALIGN - 1) / SHM_QUEUE_ALIGN * SHM_QUEUE_ALIGN;
}

void weft_shm_ring_attach(struct weft_shm_ring *ring, void *queue, uint64_t nslots,
                          size_t slot_size, bool producer)
{
    memset(ring, 0, sizeof(*ring));
    ring->q = queue;
    ring->slots = (uint8_t *)queue + WEFT_SHM_QUEUE_HDR_BYTES;
    ring->nslots = nslots;
    ring->slot_size = slot_size;
    /* A side may attach after the other started: pick up where the shared indices are. */
    if (producer) {
        ring->pos = atomic_load_explicit(&ring->q->head, memory_order_relaxed);
        ring->limit = atomic_load_explicit(&ring->q->tail, memory_order_acquire);
    } else {
        ring->pos = atomic_load_explicit(&ring->q->tail, memory_order_relaxed);
        ring->limit = atomic_load_explicit(&ring->q->head, memory_order_acquire);
    }
}
