/*
 * event.c - the fake CUDA runtime's events: a record is a stream op that stamps the time
 * (CLOCK_MONOTONIC) when it runs; queries, synchronization, elapsed time and stream waits
 * look at the last record enqueued, as CUDA's do.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tests/fakecuda/fakecuda.h"

#define DEAD_MAGIC 0xdeadu

/* Destroyed events are kept (marked dead) so that a stale handle is refused, not a crash;
 * the list keeps them reachable, so leak checkers do not count them. */
static struct CUevent_st *dead_events;

static cudaError_t check(cudaEvent_t event)
{
    return event && event->magic == WEFT_FAKE_EVENT_MAGIC
               ? cudaSuccess
               : weft_fake_fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags)
{
    const cudaError_t e = weft_fake_enter("cudaEventCreateWithFlags");
    if (e != cudaSuccess)
        return e;
    const unsigned known = cudaEventBlockingSync | cudaEventDisableTiming | cudaEventInterprocess;
    if (!event || (flags & ~known) ||
        ((flags & cudaEventInterprocess) && !(flags & cudaEventDisableTiming)))
        return weft_fake_fail(cudaErrorInvalidValue);
    struct CUevent_st *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return weft_fake_fail(cudaErrorMemoryAllocation);
    ev->magic = WEFT_FAKE_EVENT_MAGIC;
    ev->flags = flags;
    *event = ev;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *event)
{
    return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventDestroy(cudaEvent_t event)
{
    cudaError_t e = weft_fake_enter("cudaEventDestroy");
    if (e != cudaSuccess || (e = check(event)) != cudaSuccess)
        return e;
    weft_fake_lock();
    event->magic = DEAD_MAGIC; /* records still queued complete into it harmlessly */
    event->dead_next = dead_events;
    dead_events = event;
    weft_fake_unlock();
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
    cudaError_t e = weft_fake_enter("cudaEventRecord");
    cudaStream_t s;
    if (e != cudaSuccess || (e = check(event)) != cudaSuccess ||
        (e = weft_fake_stream(stream, &s)) != cudaSuccess)
        return e;
    struct weft_fake_op *op = weft_fake_op_new(WEFT_FAKE_OP_RECORD);
    if (!op)
        return weft_fake_fail(cudaErrorMemoryAllocation);
    op->event = event;
    return weft_fake_submit(s, op, NULL);
}

/* cudaSuccess once the last record enqueued has run (or when none was), else NotReady, which
 * is an answer and not kept as the last error. */
cudaError_t cudaEventQuery(cudaEvent_t event)
{
    cudaError_t e = weft_fake_enter("cudaEventQuery");
    if (e != cudaSuccess || (e = check(event)) != cudaSuccess)
        return e;
    weft_fake_lock();
    const bool done = event->done >= event->recorded;
    weft_fake_unlock();
    return done ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
    cudaError_t e = weft_fake_enter("cudaEventSynchronize");
    if (e != cudaSuccess || (e = check(event)) != cudaSuccess)
        return e;
    const double t0 = weft_fake_now();
    bool warned = false;
    weft_fake_lock();
    const uint64_t want = event->recorded;
    while (event->done < want && weft_fake_sticky() == cudaSuccess)
        weft_fake_wait_progress(t0, &warned, "cudaEventSynchronize");
    weft_fake_unlock();
    return weft_fake_fail(weft_fake_sticky());
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    cudaError_t e = weft_fake_enter("cudaEventElapsedTime");
    if (e != cudaSuccess || (e = check(start)) != cudaSuccess || (e = check(end)) != cudaSuccess)
        return e;
    if (!ms)
        return weft_fake_fail(cudaErrorInvalidValue);
    weft_fake_lock();
    if ((start->flags | end->flags) & cudaEventDisableTiming || !start->recorded ||
        !end->recorded)
        e = cudaErrorInvalidResourceHandle;
    else if (start->done < start->recorded || end->done < end->recorded)
        e = cudaErrorNotReady;
    else
        *ms = (float)((end->stamp - start->stamp) * 1e3);
    weft_fake_unlock();
    return weft_fake_fail(e);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
    cudaError_t e = weft_fake_enter("cudaStreamWaitEvent");
    cudaStream_t s;
    if (e != cudaSuccess || (e = check(event)) != cudaSuccess ||
        (e = weft_fake_stream(stream, &s)) != cudaSuccess)
        return e;
    if (flags & ~(unsigned)cudaEventWaitExternal)
        return weft_fake_fail(cudaErrorInvalidValue);
    weft_fake_lock();
    const uint64_t rec = event->recorded;
    weft_fake_unlock();
    if (rec == 0)
        return cudaSuccess; /* never recorded: nothing to wait for */
    struct weft_fake_op *op = weft_fake_op_new(WEFT_FAKE_OP_WAIT_EVENT);
    if (!op)
        return weft_fake_fail(cudaErrorMemoryAllocation);
    op->event = event;
    op->rec = rec;
    return weft_fake_submit(s, op, NULL);
}
