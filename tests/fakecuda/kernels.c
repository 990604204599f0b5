/*
 * kernels.c - the fake CUDA build's stand-ins for the kernel launchers of gpu/kernels.h
 * (gpu/reduce_kernels.cu, gpu/ipc_kernels.cu); gpu/kernels.c checks the arguments before and
 * reports the launch error after, as for the real ones. They enqueue the host kernels of
 * core/reduce.c as stream work, which gpu/gpu.h and gpu/ipc.h promise the device kernels
 * match bit for bit. The real kernels are covered only on a real GPU (tests/gpu/gpu_check).
 * An address the device could not reach (plain host memory, past an allocation's end) or a
 * misaligned one faults when the kernel runs, as on a GPU: the error is sticky.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/reduce.h"
#include "gpu/kernels.h"
#include "tests/fakecuda/fakecuda.h"

struct reduce_work {
    void *dst;
    const void *src[WEFT_GPU_REDUCE_MAX_SRCS];
    int nsrc;
    size_t count;
    weft_dtype_t dtype;
    weft_op_t op;
    int nranks; /* avg_finish */
};

/* The left fold, with the host kernels: dst may alias src[0] (gpu/gpu.h). */
static void reduce_main(void *arg)
{
    struct reduce_work *w = arg;
    if (weft_fake_sticky() == cudaSuccess) {
        if (w->nsrc == 1)
            memmove(w->dst, w->src[0], w->count * weft_dtype_size(w->dtype));
        for (int k = 1; k < w->nsrc; k++)
            weft_reduce_local(w->dst, k == 1 ? w->src[0] : w->dst, w->src[k], w->count,
                              w->dtype, w->op);
    }
    free(w);
}

static void avg_main(void *arg)
{
    struct reduce_work *w = arg;
    if (weft_fake_sticky() == cudaSuccess)
        weft_reduce_avg_finish(w->dst, w->count, w->dtype, w->nranks);
    free(w);
}

/* The shadow address of a kernel operand, or a fault kernel enqueued in its place (the
 * launch itself succeeds, as on a GPU). False when the operand is unusable. */
static bool operand(const char *kernel, const char *name, const void *p, size_t bytes,
                    size_t align, void **out, cudaStream_t stream)
{
    char what[200];
    if ((uintptr_t)p % align) {
        snprintf(what, sizeof(what), "%s: %s %p is not aligned to %zu bytes", kernel, name, p,
                 align);
        weft_fake_launch_fault(stream, cudaErrorMisalignedAddress, what);
        return false;
    }
    if (weft_fake_translate(p, bytes, true, out) != cudaSuccess) {
        snprintf(what, sizeof(what),
                 "%s: %s [%p, +%zu) is not memory the device reaches (plain host memory, "
                 "freed, or past the end of its allocation)",
                 kernel, name, p, bytes);
        weft_fake_launch_fault(stream, cudaErrorIllegalAddress, what);
        return false;
    }
    return true;
}

/* Enqueues w (owned) as a kernel; the launch error is left for cudaGetLastError. */
static void launch(void (*fn)(void *), struct reduce_work *w, cudaStream_t s)
{
    if (weft_fake_launch(s, fn, w) != cudaSuccess)
        free(w);
}

void weft_gpu_reduce_launch(void *dst, const void *const *src, int nsrc, size_t count,
                            weft_dtype_t dtype, weft_op_t op, void *stream)
{
    const size_t esize = weft_dtype_size(dtype), bytes = count * esize;
    cudaStream_t s = stream;
    struct reduce_work *w = calloc(1, sizeof(*w));
    if (!w) {
        weft_fake_fail(cudaErrorMemoryAllocation);
        return;
    }
    *w = (struct reduce_work){.nsrc = nsrc, .count = count, .dtype = dtype, .op = op};
    bool ok = operand("weft_gpu_reduce", "dst", dst, bytes, esize, &w->dst, s);
    for (int k = 0; ok && k < nsrc; k++) {
        void *shadow = NULL;
        ok = operand("weft_gpu_reduce", "an input", src[k], bytes, esize, &shadow, s);
        w->src[k] = shadow;
    }
    if (ok)
        launch(reduce_main, w, s);
    else
        free(w);
}

void weft_gpu_avg_launch(void *buf, size_t count, weft_dtype_t dtype, int nranks, void *stream)
{
    const size_t esize = weft_dtype_size(dtype);
    cudaStream_t s = stream;
    struct reduce_work *w = calloc(1, sizeof(*w));
    if (!w) {
        weft_fake_fail(cudaErrorMemoryAllocation);
        return;
    }
    *w = (struct reduce_work){.count = count, .dtype = dtype, .nranks = nranks};
    void *d = NULL;
    if (operand("weft_gpu_avg_finish", "buf", buf, count * esize, esize, &d, s)) {
        w->dst = d;
        launch(avg_main, w, s);
    } else {
        free(w);
    }
}
