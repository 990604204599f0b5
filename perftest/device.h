/*
 * device.h - where weft-perf's collective buffers live when they are not plain host memory:
 * CUDA device memory with the calls on a non-default stream (--gpu), or host memory posing as
 * a device (--fake-gpu), so that CPU-only tests drive --gpu's copies, pointer bookkeeping and
 * checks. coll.c sees only this table; device_cuda.c is the one file that calls CUDA.
 */
#ifndef WEFT_PERFTEST_DEVICE_H
#define WEFT_PERFTEST_DEVICE_H

#include <stddef.h>

#include "weft.h"

struct perf_dev;

/* Calls that can fail raise the cause once (WEFT_ERROR: the CUDA call and its message). */
struct perf_dev_ops {
    weft_result_t (*alloc)(struct perf_dev *d, size_t bytes, void **out);
    void (*free)(struct perf_dev *d, void *ptr);
    /* Enqueues device dst <- host src on the stream; src may be rewritten on return. */
    weft_result_t (*upload)(struct perf_dev *d, void *dst, const void *src, size_t bytes);
    /* Host dst <- device src after everything enqueued before; returns when it is done. */
    weft_result_t (*download)(struct perf_dev *d, void *dst, const void *src, size_t bytes);
    /* Waits until the stream has done everything enqueued on it. */
    weft_result_t (*sync)(struct perf_dev *d);
    /* Marks the start and the end of a timed stretch of the stream; stop waits for the end
     * and gives the seconds between the two marks. */
    weft_result_t (*timer_start)(struct perf_dev *d);
    weft_result_t (*timer_stop)(struct perf_dev *d, double *seconds);
    void (*close)(struct perf_dev *d);
};

struct perf_dev {
    const struct perf_dev_ops *ops;
    const char *what; /* one line for the report header: the memory, the stream, the clock */
    int device;       /* this rank's CUDA device, -1 for the fake */
    void *stream;     /* what the collectives get: a cudaStream_t, NULL for the fake */
};

/* --gpu: makes device `local_rank % (number of devices)` current (several ranks may share
 * one) and creates a non-blocking stream and the timing events on it. WEFT_ERR_UNSUPPORTED
 * without CUDA in the build or without a GPU, WEFT_ERR_SYSTEM when a CUDA call fails. */
weft_result_t perf_dev_open_cuda(int local_rank, struct perf_dev **out);
/* --fake-gpu: separate host allocations, memcpy for the copies, stream NULL (blocking
 * calls), the monotonic clock. */
weft_result_t perf_dev_open_fake(struct perf_dev **out);

#endif /* WEFT_PERFTEST_DEVICE_H */
