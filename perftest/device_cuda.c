/*
 * device_cuda.c - weft-perf --gpu's CUDA calls: picks this rank's device, creates the stream
 * the collectives are enqueued on and the events that time them, allocates and copies.
 * Without CUDA in the build, opening says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft_tools.h"
#include "perftest/device.h"

#ifdef WEFT_HAVE_CUDA
#include <cuda_runtime_api.h>

struct cuda_dev {
    struct perf_dev base;
    cudaStream_t stream;
    cudaEvent_t start, stop;
};

/* Raises the failure of `call` once, named by the function alone, on GPU `dev`. CUDA keeps
 * non-sticky errors for cudaGetLastError; clearing it keeps them out of later calls. */
#define CUDA_CALL(dev, call)                                                                     \
    do {                                                                                         \
        const cudaError_t cuda_call_e_ = (call);                                                 \
        if (cuda_call_e_ != cudaSuccess) {                                                       \
            (void)cudaGetLastError();                                                            \
            return weft_set_error(WEFT_ERR_SYSTEM, "weft-perf --gpu: GPU %d: %.*s: %s (%s)", (dev), \
                              (int)strcspn(#call, "("), #call, cudaGetErrorString(cuda_call_e_), \
                              cudaGetErrorName(cuda_call_e_));                                   \
        }                                                                                        \
    } while (0)

static struct cuda_dev *cuda(struct perf_dev *d)
{
    return (struct cuda_dev *)d;
}

static weft_result_t cuda_alloc(struct perf_dev *d, size_t bytes, void **out)
{
    void *p = NULL;
    CUDA_CALL(d->device, cudaMalloc(&p, bytes > 0 ? bytes : 1));
    *out = p;
    return WEFT_OK;
}

static void cuda_free(struct perf_dev *d, void *ptr)
{
    (void)d;
    if (ptr != NULL && cudaFree(ptr) != cudaSuccess)
        (void)cudaGetLastError(); /* at exit: nothing left to do about it */
}

static weft_result_t cuda_upload(struct perf_dev *d, void *dst, const void *src, size_t bytes)
{
    /* From pageable memory the copy has taken src by the time it returns. */
    CUDA_CALL(d->device, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cuda(d)->stream));
    return WEFT_OK;
}

/* The stream waits on Weft's worker for each call; Weft lets every stream go within its
 * WEFT_TIMEOUT, failed operations included, so these waits end. */
static weft_result_t cuda_sync(struct perf_dev *d)
{
    CUDA_CALL(d->device, cudaStreamSynchronize(cuda(d)->stream));
    return WEFT_OK;
}

static weft_result_t cuda_download(struct perf_dev *d, void *dst, const void *src, size_t bytes)
{
    CUDA_CALL(d->device, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cuda(d)->stream));
    return cuda_sync(d);
}

static weft_result_t cuda_timer_start(struct perf_dev *d)
{
    CUDA_CALL(d->device, cudaEventRecord(cuda(d)->start, cuda(d)->stream));
    return WEFT_OK;
}

static weft_result_t cuda_timer_stop(struct perf_dev *d, double *seconds)
{
    float ms = 0.0f;
    CUDA_CALL(d->device, cudaEventRecord(cuda(d)->stop, cuda(d)->stream));
    CUDA_CALL(d->device, cudaEventSynchronize(cuda(d)->stop));
    CUDA_CALL(d->device, cudaEventElapsedTime(&ms, cuda(d)->start, cuda(d)->stop));
    *seconds = (double)ms * 1e-3;
    return WEFT_OK;
}

static void cuda_close(struct perf_dev *d)
{
    struct cuda_dev *c = cuda(d);
    if (c->stop)
        cudaEventDestroy(c->stop);
    if (c->start)
        cudaEventDestroy(c->start);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    (void)cudaGetLastError();
    free(c);
}

static const struct perf_dev_ops cuda_ops = {
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .sync = cuda_sync,
    .timer_start = cuda_timer_start,
    .timer_stop = cuda_timer_stop,
    .close = cuda_close,
};

/* The device current, then the stream and events made on it. */
static weft_result_t setup(struct cuda_dev *c, int device)
{
    CUDA_CALL(device, cudaSetDevice(device));
    /* Non-blocking: nothing on the legacy default stream orders it, as in a framework. */
    CUDA_CALL(device, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    CUDA_CALL(device, cudaEventCreate(&c->start));
    CUDA_CALL(device, cudaEventCreate(&c->stop));
    return WEFT_OK;
}

weft_result_t perf_dev_open_cuda(int local_rank, struct perf_dev **out)
{
    const char *why = "";
    if (!weft_gpu_present(&why))
        return weft_set_error(WEFT_ERR_UNSUPPORTED, "weft-perf --gpu: no GPU: %s", why);
    int count = 0;
    CUDA_CALL(-1, cudaGetDeviceCount(&count));
    if (count <= 0)
        return weft_set_error(WEFT_ERR_UNSUPPORTED, "weft-perf --gpu: cudaGetDeviceCount says %d",
                              count);
    const int device = (local_rank > 0 ? local_rank : 0) % count;
    struct cuda_dev *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return weft_set_error(WEFT_ERR_NO_MEMORY, "weft-perf --gpu: cannot allocate: calloc: %s",
                              strerror(errno));
    c->base = (struct perf_dev){
        .ops = &cuda_ops,
        .what = "CUDA device memory (cudaMalloc), calls on a non-blocking stream, time from "
                "CUDA events on it",
        .device = device,
    };
    const weft_result_t r = setup(c, device);
    if (r != WEFT_OK) {
        cuda_close(&c->base);
        return r;
    }
    c->base.stream = c->stream;
    *out = &c->base;
    return WEFT_OK;
}

#else /* !WEFT_HAVE_CUDA */

weft_result_t perf_dev_open_cuda(int local_rank, struct perf_dev **out)
{
    (void)local_rank, (void)out;
    const char *why = "";
    (void)weft_gpu_present(&why);
    return weft_set_error(WEFT_ERR_UNSUPPORTED, "weft-perf --gpu: no GPU: %s", why);
}

#endif
