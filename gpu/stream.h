/*
 * stream.h - device buffers on a CUDA stream through pinned host staging: the stream copies
 * the inputs to pinned memory, signals (an event) that the host may run the operation, waits
 * until the host releases its ticket, then copies the outputs back. Knows nothing of
 * collectives: callers describe buffers and get host pointers back.
 */
#ifndef WEFT_GPU_STREAM_H
#define WEFT_GPU_STREAM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft.h"

/* ---- staging layout (host only, every build) ------------------------------------------- */

enum { WEFT_STAGE_IN = 1, WEFT_STAGE_OUT = 2 };

/* One device buffer of an operation. Several may overlap (in-place calls, a group reading
 * one buffer twice): overlapping ones share staging with the same relative layout. */
struct weft_stage_buf {
    const void *dev; /* the caller's device buffer */
    size_t bytes;    /* > 0 */
    unsigned dir;    /* WEFT_STAGE_IN (copied to the host before), OUT (copied back after) */
    size_t offset;   /* set by weft_stage_layout: where it lives in the staging block */
    void *host;      /* set by weft_stream_enqueue: the staging address to use instead */
};

/* Places bufs[0..n) in one staging block: buffers whose device ranges overlap keep their
 * relative positions, every region keeps its device address's alignment modulo 256 (so that
 * element alignment survives), disjoint regions get disjoint space. Sets each offset and
 * *total (the block's size). */
weft_result_t weft_stage_layout(struct weft_stage_buf *bufs, size_t n, size_t *total);

/* ---- tickets (host only, every build) --------------------------------------------------- */

/* Whether a released counter `released` lets ticket `ticket` pass: a cyclic >=, like
 * CU_STREAM_WAIT_VALUE_GEQ, so the 32-bit counter may wrap. */
static inline bool weft_ticket_passed(uint32_t released, uint32_t ticket)
{
    return (int32_t)(released - ticket) >= 0;
}

/* The host side of the fallback release: host functions on the stream wait here. */
struct weft_ticket_gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint32_t released; /* the last ticket released; tickets are released in order */
};

void weft_ticket_gate_init(struct weft_ticket_gate *g);
void weft_ticket_gate_fini(struct weft_ticket_gate *g);
void weft_ticket_gate_release(struct weft_ticket_gate *g, uint32_t ticket);
/* Waits until `ticket` is released: WEFT_OK, or WEFT_ERR_TIMEOUT once no ticket at all was
 * released for timeout_s. */
weft_result_t weft_ticket_gate_wait(struct weft_ticket_gate *g, uint32_t ticket, double timeout_s);

/* ---- the stream side (CUDA builds; WEFT_ERR_UNSUPPORTED otherwise) ---------------------- */

/* `bytes` of pinned host memory for staging (cudaHostAlloc, portable; cudaFreeHost frees it),
 * or WEFT_ERR_NO_MEMORY naming rank and size. *out is set only on success. */
weft_result_t weft_gpu_pin(int rank, size_t bytes, void **out);

/* Pinned blocks a communicator outgrew. cudaFreeHost synchronizes the device: on a user's
 * thread it would wait for work the user's streams hold back (calls must return at once), and
 * while a stream waits for the worker it would deadlock. So outgrown blocks wait here, and are
 * freed together when no stream can wait any more (at destroy). CUDA builds. */
struct weft_pinned_retired {
    void **blocks;
    size_t n;
};
/* Keeps `block` for weft_pinned_free_all; leaks it, with a warning, if the list cannot grow. */
void weft_pinned_retire(int rank, struct weft_pinned_retired *r, void *block);
void weft_pinned_free_all(struct weft_pinned_retired *r);

/* Per communicator: the pinned staging pool, the released-ticket word the streams wait on,
 * and the device it serves (the current one when created). */
struct weft_stream_gate;

/* One enqueued operation, as the worker sees it. */
struct weft_stream_ticket {
    struct weft_stream_gate *gate;
    uint32_t ticket;
    void *ready; /* cudaEvent_t recorded after the inputs' copies */
};

/* WEFT_GPU_STREAM_RELEASE picks how streams wait (stream memory operations, else host
 * functions); logged at INFO. Pinned memory is allocated as calls need it and freed only by
 * destroy (cudaFreeHost synchronizes the device). */
weft_result_t weft_stream_gate_create(int rank, struct weft_stream_gate **out);
/* Waits (up to timeout_s) for every stream to be done with the staging, then frees it;
 * what a stream may still use after that is left allocated, with a warning. */
void weft_stream_gate_destroy(struct weft_stream_gate *gate, double timeout_s);
/* "stream memory operations" or "host functions": how streams wait for the host. */
const char *weft_stream_gate_mechanism(const struct weft_stream_gate *gate);

/* Enqueues on `stream` (a cudaStream_t): the copies of the IN buffers to staging, the ready
 * event, the wait for the ticket's release, the copies of the OUT buffers back, and the
 * event that frees the staging for reuse. Sets each buf's host pointer. On failure *armed
 * says whether the stream already waits for the ticket: then it must still be released, in
 * order, as any other. */
weft_result_t weft_stream_enqueue(struct weft_stream_gate *gate, void *stream,
                                  struct weft_stage_buf *bufs, size_t n, const char *call,
                                  struct weft_stream_ticket *ticket, bool *armed);
/* WEFT_OK once the stream reached the operation (the inputs are in staging),
 * WEFT_ERR_IN_PROGRESS before, WEFT_ERR_SYSTEM if the stream failed. Any thread. */
weft_result_t weft_stream_ready(const struct weft_stream_ticket *t);
/* Lets the stream go past the operation. Any thread, once per ticket, in ticket order. */
void weft_stream_release(const struct weft_stream_ticket *t);

#endif /* WEFT_GPU_STREAM_H */
