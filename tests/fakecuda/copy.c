/*
 * copy.c - the fake CUDA runtime's copies and memsets, as stream ops on translated addresses,
 * with CUDA's documented host synchronization: pageable memory makes an async copy
 * synchronous; cudaMemcpy returns before a device-to-device copy or the DMA of a pageable
 * upload completes; cudaMemset on device memory does not wait.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fakecuda/fakecuda.h"

/* Device memory in the sense of the synchronization rules (managed counts as device). */
static bool on_device(const void *p)
{
    const enum weft_fake_mem k = weft_fake_kind(p);
    return k == WEFT_FAKE_DEVICE || k == WEFT_FAKE_IMPORTED || k == WEFT_FAKE_MANAGED;
}

/* A copy op for [dst, dst+n) <- [src, src+n), checked against `kind`: the device side of an
 * explicit kind must be memory the device reaches; every range must stay in its allocation. */
static cudaError_t copy_op(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
                           struct weft_fake_op **out)
{
    if ((unsigned)kind > cudaMemcpyDefault)
        return weft_fake_fail(cudaErrorInvalidValue);
    const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    void *d = NULL, *s = NULL;
    if (weft_fake_translate(dst, n, dst_dev, &d) != cudaSuccess ||
        weft_fake_translate(src, n, src_dev, &s) != cudaSuccess)
        return weft_fake_fail(cudaErrorInvalidValue);
    struct weft_fake_op *op = weft_fake_op_new(WEFT_FAKE_OP_COPY);
    if (!op)
        return weft_fake_fail(cudaErrorMemoryAllocation);
    op->dst = d;
    op->src = s;
    op->len = n;
    *out = op;
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream)
{
    cudaError_t e = weft_fake_enter("cudaMemcpyAsync");
    cudaStream_t s;
    struct weft_fake_op *op = NULL;
    if (e != cudaSuccess || (e = weft_fake_stream(stream, &s)) != cudaSuccess)
        return e;
    if (count == 0)
        return cudaSuccess;
    if ((e = copy_op(dst, src, count, kind, &op)) != cudaSuccess)
        return e;
    /* Pageable memory, or host to host: synchronous, as CUDA documents it may be. */
    const bool sync = weft_fake_kind(dst) == WEFT_FAKE_UNREGISTERED ||
                      weft_fake_kind(src) == WEFT_FAKE_UNREGISTERED ||
                      (!on_device(dst) && !on_device(src));
    uint64_t seq;
    if ((e = weft_fake_submit(s, op, &seq)) != cudaSuccess)
        return e;
    if (sync)
        weft_fake_wait_seq(s, seq, "cudaMemcpyAsync (pageable or host-to-host)");
    return cudaSuccess;
}

/* Rows of `width` bytes; each whole extent (pitch x rows) must lie in its allocation. */
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
                              size_t width, size_t height, enum cudaMemcpyKind kind,
                              cudaStream_t stream)
{
    cudaError_t e = weft_fake_enter("cudaMemcpy2DAsync");
    cudaStream_t s;
    struct weft_fake_op *op = NULL;
    if (e != cudaSuccess || (e = weft_fake_stream(stream, &s)) != cudaSuccess)
        return e;
    if (width == 0 || height == 0)
        return cudaSuccess;
    if (width > dpitch || width > spitch || dpitch > (SIZE_MAX - width) / height ||
        spitch > (SIZE_MAX - width) / height)
        return weft_fake_fail(cudaErrorInvalidPitchValue);
    /* One op over the bounding extents checks both ranges; then it copies row by row. */
    if ((e = copy_op(dst, src, 0, kind, &op)) != cudaSuccess)
        return e;
    void *d = NULL, *x = NULL;
    const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (weft_fake_translate(dst, dpitch * (height - 1) + width, dst_dev, &d) != cudaSuccess ||
        weft_fake_translate(src, spitch * (height - 1) + width, src_dev, &x) != cudaSuccess) {
        weft_fake_op_free(op);
        return weft_fake_fail(cudaErrorInvalidValue);
    }
    op->dst = d;
    op->src = x;
    op->len = width;
    op->rows = height;
    op->dpitch = dpitch;
    op->spitch = spitch;
    const bool sync = weft_fake_kind(dst) == WEFT_FAKE_UNREGISTERED ||
                      weft_fake_kind(src) == WEFT_FAKE_UNREGISTERED ||
                      (!on_device(dst) && !on_device(src));
    uint64_t seq;
    if ((e = weft_fake_submit(s, op, &seq)) != cudaSuccess)
        return e;
    if (sync)
        weft_fake_wait_seq(s, seq, "cudaMemcpy2DAsync (pageable or host-to-host)");
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
    cudaError_t e = weft_fake_enter("cudaMemcpy");
    cudaStream_t s;
    struct weft_fake_op *op = NULL;
    if (e != cudaSuccess || (e = weft_fake_stream(NULL, &s)) != cudaSuccess)
        return e;
    if (count == 0)
        return cudaSuccess;
    if ((e = copy_op(dst, src, count, kind, &op)) != cudaSuccess)
        return e;
    uint64_t seq;
    const bool dst_dev = on_device(dst), src_dev = on_device(src);
    if (dst_dev && src_dev)
        return weft_fake_submit(s, op, NULL); /* device to device: no host synchronization */
    if (dst_dev && weft_fake_kind(src) == WEFT_FAKE_UNREGISTERED) {
        /* From pageable memory: after the stream's earlier work, the source is taken (staged)
         * before the call returns; the copy to the device may still be under way. */
        weft_fake_drain_legacy(weft_fake_device(), "cudaMemcpy (pageable to device)");
        op->owned = malloc(count);
        if (!op->owned) {
            weft_fake_op_free(op);
            return weft_fake_fail(cudaErrorMemoryAllocation);
        }
        memcpy(op->owned, op->src, count);
        op->src = op->owned;
        return weft_fake_submit(s, op, NULL);
    }
    if ((e = weft_fake_submit(s, op, &seq)) != cudaSuccess)
        return e;
    weft_fake_wait_seq(s, seq, "cudaMemcpy");
    return weft_fake_fail(weft_fake_sticky());
}

static cudaError_t memset_op(void *dst, int value, size_t count, cudaStream_t stream, bool sync)
{
    cudaStream_t s;
    void *d = NULL;
    cudaError_t e = weft_fake_stream(stream, &s);
    if (e != cudaSuccess)
        return e;
    if (count == 0)
        return cudaSuccess;
    if (weft_fake_translate(dst, count, true, &d) != cudaSuccess)
        return weft_fake_fail(cudaErrorInvalidValue);
    struct weft_fake_op *op = weft_fake_op_new(WEFT_FAKE_OP_MEMSET);
    if (!op)
        return weft_fake_fail(cudaErrorMemoryAllocation);
    op->dst = d;
    op->value = value;
    op->len = count;
    uint64_t seq;
    if ((e = weft_fake_submit(s, op, &seq)) != cudaSuccess)
        return e;
    if (sync)
        weft_fake_wait_seq(s, seq, "cudaMemset");
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *devPtr, int value, size_t count, cudaStream_t stream)
{
    const cudaError_t e = weft_fake_enter("cudaMemsetAsync");
    return e != cudaSuccess ? e : memset_op(devPtr, value, count, stream, false);
}

/* Asynchronous on device memory; synchronous on pinned or managed memory. */
cudaError_t cudaMemset(void *devPtr, int value, size_t count)
{
    cudaError_t e = weft_fake_enter("cudaMemset");
    const enum weft_fake_mem k = weft_fake_kind(devPtr);
    if (e == cudaSuccess)
        e = memset_op(devPtr, value, count, NULL, k == WEFT_FAKE_PINNED || k == WEFT_FAKE_MANAGED);
    if (e == cudaSuccess)
        weft_fake_implicit_sync(weft_fake_device());
    return e;
}
